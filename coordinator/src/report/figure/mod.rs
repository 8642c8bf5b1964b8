//! Figures of the report, written by hand as SVG: one `<svg>` per figure
//! with `<title>` and `<desc>`, axis labels with units, and the Okabe-Ito
//! palette. The same SVG is inlined in `report.html`, saved as
//! `figures/NAME.svg` and rendered to `figures/NAME.png`.

pub mod axis;
pub mod calibration;
pub mod decision;
pub mod png;
pub mod roc;
pub mod shap;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::ReportError;
pub use super::html::escape;
use axis::{Frame, draw_axes, legend, open_svg, polyline};

/// One figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem in `figures/` and the HTML id (`figure-NAME`).
    pub name: String,
    /// Caption shown under the figure.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

impl Figure {
    /// Writes `NAME.svg` and `NAME.png` into `dir`.
    pub fn write_files(&self, dir: &Path, renderer: &png::PngRenderer) -> Result<(), ReportError> {
        let svg_path = dir.join(format!("{}.svg", self.name));
        std::fs::write(&svg_path, &self.svg).map_err(|source| ReportError::Write {
            path: svg_path.clone(),
            source,
        })?;
        let png_path = dir.join(format!("{}.png", self.name));
        let bytes = renderer.render(&self.name, &self.svg)?;
        std::fs::write(&png_path, bytes).map_err(|source| ReportError::Write {
            path: png_path.clone(),
            source,
        })
    }
}

/// One line of a line chart, in data coordinates.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points in data coordinates, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Stroke colour.
    pub colour: &'static str,
    /// Dashed stroke (reference lines).
    pub dashed: bool,
    /// Draw a circle at each point (binned curves such as calibration).
    pub markers: bool,
}

/// A line chart: axes, series and legend.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Heading and SVG `<title>`.
    pub title: String,
    /// SVG `<desc>`: what the figure shows, for screen readers.
    pub description: String,
    /// x-axis label with unit.
    pub x_label: String,
    /// y-axis label with unit.
    pub y_label: String,
    /// x data range.
    pub x_range: (f64, f64),
    /// y data range.
    pub y_range: (f64, f64),
    /// Lines, drawn in order.
    pub series: Vec<Series>,
    /// Legend in the bottom-right corner (else top-right).
    pub legend_bottom_right: bool,
}

impl LineChart {
    /// Renders the chart as an SVG document. Points outside the y range
    /// are clamped to the frame, so a steep reference line stays inside.
    pub fn to_svg(&self) -> String {
        let frame = Frame::new(self.x_range, self.y_range);
        let mut svg = String::new();
        open_svg(&mut svg, &self.title, &self.description);
        draw_axes(&mut svg, &frame, &self.x_label, &self.y_label);
        let (y_low, y_high) = (
            self.y_range.0.min(self.y_range.1),
            self.y_range.0.max(self.y_range.1),
        );
        // Earlier series are drawn wider, so a curve that coincides with a
        // later one (a fusion model equal to a single model) still shows
        // at its edges.

        // Reference lines (grey or black) keep the base width.
        let is_model = |s: &Series| axis::PALETTE.contains(&s.colour);
        let models = self.series.iter().filter(|s| is_model(s)).count();
        let mut model_index = 0;
        for series in &self.series {
            let width = if is_model(series) {
                model_index += 1;
                2.0 + 2.0 * (models - model_index) as f64
            } else {
                2.0
            };
            let pixels: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| frame.point(*x, y.clamp(y_low, y_high)))
                .collect();
            polyline(&mut svg, &pixels, series.colour, series.dashed, width);
            if series.markers {
                for (x, y) in &pixels {
                    let _ = write!(
                        svg,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\" stroke=\"#000000\" stroke-width=\"0.5\"/>",
                        series.colour
                    );
                }
            }
        }

        let entries: Vec<(String, &str, bool)> = self
            .series
            .iter()
            .map(|s| (s.label.clone(), s.colour, s.dashed))
            .collect();
        legend(&mut svg, &frame, &entries, self.legend_bottom_right);
        svg.push_str("</svg>");
        svg
    }
}

/// Groups rows by cohort and then by model, keeping the order in which
/// models first appear.
pub type ByCohort<T> = BTreeMap<String, Vec<(String, Vec<T>)>>;

/// Appends `item` under (`cohort`, `model`) of `groups`.
pub fn group_push<T>(groups: &mut ByCohort<T>, cohort: &str, model: &str, item: T) {
    let models = groups.entry(cohort.to_string()).or_default();
    match models.iter_mut().find(|(m, _)| m == model) {
        Some((_, items)) => items.push(item),
        None => models.push((model.to_string(), vec![item])),
    }
}

/// Returns the cohorts of `groups` in report order (training, internal,
/// external, then any other id).
pub fn cohorts_in_order<T>(groups: &ByCohort<T>) -> Vec<String> {
    let mut cohorts: Vec<String> = groups.keys().cloned().collect();
    cohorts.sort_by_key(|c| {
        super::COHORTS
            .iter()
            .position(|(id, _)| id == c)
            .unwrap_or(super::COHORTS.len())
    });
    cohorts
}
