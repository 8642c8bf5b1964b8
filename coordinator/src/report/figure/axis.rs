//! Shared plot geometry: the plot frame, linear scales, tick positions,
//! axes with labels, and the Okabe-Ito colour palette.
//!
//! Every figure is 640 x 480 user units (about 17 x 13 cm at 96 dpi), with
//! 14-unit axis labels and 12-unit tick labels, which stay readable when
//! the figure is printed at half a page width.

use std::fmt::Write as _;

use super::escape;

/// Figure width in SVG user units.
pub const WIDTH: f64 = 640.0;
/// Figure height in SVG user units.
pub const HEIGHT: f64 = 480.0;

/// Okabe-Ito palette (Okabe and Ito, "Color Universal Design", 2008),
/// without its black, in the order lines are drawn. The colours stay
/// distinct under the common forms of colour-vision deficiency.
pub const PALETTE: [&str; 7] = [
    "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442",
];

/// Colour of reference lines (chance diagonal, treat-none).
pub const REFERENCE: &str = "#555555";

/// Returns the palette colour of series `index`, cycling after seven.
pub fn series_colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// A linear map from a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Data value at the start of the axis.
    pub min: f64,
    /// Data value at the end of the axis.
    pub max: f64,
    /// Pixel position of `min`.
    pub start: f64,
    /// Pixel position of `max`.
    pub end: f64,
}

impl Scale {
    /// Maps a data value to its pixel position. A degenerate interval
    /// (`min == max`) maps everything to the middle of the axis.
    pub fn map(&self, value: f64) -> f64 {
        let span = self.max - self.min;
        if span.abs() < f64::EPSILON {
            return (self.start + self.end) / 2.0;
        }
        self.start + (value - self.min) / span * (self.end - self.start)
    }
}

/// Returns about `target` tick values covering `[min, max]` at a step of
/// 1, 2 or 5 times a power of ten.
pub fn ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    let span = max - min;
    if !span.is_finite() || span <= 0.0 || target == 0 {
        return vec![min];
    }
    let raw = span / target as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Returns `[min, max]` widened outward to the nearest tick step, so that
/// the data never touch the frame; an empty or flat range becomes
/// `[value - 1, value + 1]`.
pub fn nice_range(min: f64, max: f64) -> (f64, f64) {
    if !min.is_finite() || !max.is_finite() {
        return (0.0, 1.0);
    }
    if (max - min).abs() < 1e-12 {
        return (min - 1.0, max + 1.0);
    }
    let step = {
        let t = ticks(min, max, 5);
        if t.len() >= 2 { t[1] - t[0] } else { max - min }
    };
    ((min / step).floor() * step, (max / step).ceil() * step)
}

/// Formats a tick value with as few decimals as its step needs.
pub fn format_tick(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
        text[1..].to_string()
    } else {
        text
    }
}

/// The plot area inside the figure, with its two scales.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Horizontal scale.
    pub x: Scale,
    /// Vertical scale (pixel `start` is the bottom edge).
    pub y: Scale,
}

/// Left margin, wide enough for tick labels and the rotated y label.
pub const MARGIN_LEFT: f64 = 80.0;
/// Right margin.
pub const MARGIN_RIGHT: f64 = 24.0;
/// Top margin, room for the heading.
pub const MARGIN_TOP: f64 = 44.0;
/// Bottom margin, room for tick labels and the x label.
pub const MARGIN_BOTTOM: f64 = 64.0;

impl Frame {
    /// Returns the frame for data ranges `x` and `y`, with the default
    /// margins, inside a figure of [`WIDTH`] x [`HEIGHT`].
    pub fn new(x: (f64, f64), y: (f64, f64)) -> Self {
        Self::with_left_margin(x, y, MARGIN_LEFT)
    }

    /// Like [`Frame::new`], with a wider left margin for long category
    /// labels (feature names).
    pub fn with_left_margin(x: (f64, f64), y: (f64, f64), left: f64) -> Self {
        Frame {
            x: Scale {
                min: x.0,
                max: x.1,
                start: left,
                end: WIDTH - MARGIN_RIGHT,
            },
            y: Scale {
                min: y.0,
                max: y.1,
                start: HEIGHT - MARGIN_BOTTOM,
                end: MARGIN_TOP,
            },
        }
    }

    /// Maps a data point to pixel coordinates.
    pub fn point(&self, x: f64, y: f64) -> (f64, f64) {
        (self.x.map(x), self.y.map(y))
    }
}

/// Opens an SVG document with its accessible `<title>` and `<desc>`.
pub fn open_svg(svg: &mut String, title: &str, description: &str) {
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\
         <title>{}</title><desc>{}</desc>\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\
         <text x=\"{}\" y=\"26\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>",
        escape(title),
        escape(description),
        WIDTH / 2.0,
        escape(title),
    );
}

/// Draws both axes with ticks, tick labels and axis labels. Labels name
/// the quantity and its unit, e.g. "False-positive rate (1 − specificity)".
pub fn draw_axes(svg: &mut String, frame: &Frame, x_label: &str, y_label: &str) {
    let (x0, x1) = (frame.x.start, frame.x.end);
    let (y0, y1) = (frame.y.start, frame.y.end);
    let _ = write!(
        svg,
        "<rect x=\"{x0:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#000000\" stroke-width=\"1\"/>",
        x1 - x0,
        y0 - y1
    );
    draw_x_ticks(svg, frame);
    let y_ticks = ticks(frame.y.min, frame.y.max, 5);
    let y_step = tick_step(&y_ticks);
    for value in &y_ticks {
        let y = frame.y.map(*value);
        let _ = write!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{x0:.1}\" y2=\"{y:.1}\" stroke=\"#000000\"/>\
             <line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#dddddd\" stroke-width=\"0.5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            x0 - 5.0,
            x0 - 8.0,
            y + 4.0,
            format_tick(*value, y_step)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" text-anchor=\"middle\">{}</text>\
         <text x=\"18\" y=\"{:.1}\" font-size=\"14\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">{}</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 16.0,
        escape(x_label),
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(y_label),
    );
}

/// Draws only the x ticks and their labels (used by category plots, whose
/// y axis carries names instead of numbers).
pub fn draw_x_ticks(svg: &mut String, frame: &Frame) {
    let x_ticks = ticks(frame.x.min, frame.x.max, 6);
    let x_step = tick_step(&x_ticks);
    let y0 = frame.y.start;
    for value in &x_ticks {
        let x = frame.x.map(*value);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{y0:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#000000\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            y0 + 5.0,
            y0 + 20.0,
            format_tick(*value, x_step)
        );
    }
}

fn tick_step(ticks: &[f64]) -> f64 {
    if ticks.len() >= 2 {
        ticks[1] - ticks[0]
    } else {
        1.0
    }
}

/// Draws a polyline through `points` (pixel coordinates).
pub fn polyline(svg: &mut String, points: &[(f64, f64)], colour: &str, dashed: bool, width: f64) {
    if points.is_empty() {
        return;
    }
    let coordinates: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let dash = if dashed {
        " stroke-dasharray=\"6 4\""
    } else {
        ""
    };
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width:.1}\"{dash}/>",
        coordinates.join(" ")
    );
}

/// Draws a legend in the bottom-right or top-right corner of the plot
/// area: one line sample and label per entry.
pub fn legend(
    svg: &mut String,
    frame: &Frame,
    entries: &[(String, &str, bool)],
    bottom_right: bool,
) {
    let line_height = 18.0;
    let x = frame.x.end - 210.0;
    let y_first = if bottom_right {
        frame.y.start - 10.0 - line_height * entries.len() as f64 + 12.0
    } else {
        frame.y.end + 18.0
    };
    let _ = write!(
        svg,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"204\" height=\"{:.1}\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>",
        x - 4.0,
        y_first - 13.0,
        line_height * entries.len() as f64 + 4.0
    );
    for (index, (label, colour, dashed)) in entries.iter().enumerate() {
        let y = y_first + line_height * index as f64;
        let dash = if *dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"12\">{}</text>",
            y - 4.0,
            x + 24.0,
            y - 4.0,
            x + 30.0,
            escape(label)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_unit_interval_steps_by_two_tenths() {
        // 1/5 of the span is 0.2, a 2 x 10^-1 step.
        let values = ticks(0.0, 1.0, 5);
        assert_eq!(values.len(), 6, "{values:?}");
        assert!((values[1] - 0.2).abs() < 1e-12, "{values:?}");
        assert!((values[5] - 1.0).abs() < 1e-12, "{values:?}");
    }

    #[test]
    fn ticks_flat_range_returns_one_value() {
        assert_eq!(ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn scale_maps_ends_and_flips_y() {
        let frame = Frame::new((0.0, 1.0), (0.0, 1.0));
        assert_eq!(frame.point(0.0, 0.0), (MARGIN_LEFT, HEIGHT - MARGIN_BOTTOM));
        assert_eq!(frame.point(1.0, 1.0), (WIDTH - MARGIN_RIGHT, MARGIN_TOP));
    }

    #[test]
    fn nice_range_widens_to_tick_steps() {
        // Ticks of [-0.13, 0.27] step by 0.1, so the range becomes [-0.2, 0.3].
        let (low, high) = nice_range(-0.13, 0.27);
        assert!((low + 0.2).abs() < 1e-12, "{low}");
        assert!((high - 0.3).abs() < 1e-12, "{high}");
    }

    #[test]
    fn format_tick_drops_negative_zero() {
        assert_eq!(format_tick(-0.0, 0.1), "0.0");
        assert_eq!(format_tick(0.25, 0.05), "0.25");
    }
}
