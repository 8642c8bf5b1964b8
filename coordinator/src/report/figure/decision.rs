//! Decision curves per cohort: net benefit of each model, of treating all
//! and of treating none, against the threshold probability, from
//! `decision_curve.csv`.
//!
//! Net benefit (Vickers and Elkin 2006): NB(p_t) = TP/N − FP/N · p_t/(1 − p_t).

use super::super::section::{Section, missing};
use super::super::{ReportError, StudyFiles, cohort_name};
use super::axis::{REFERENCE, nice_range, series_colour};
use super::{ByCohort, Figure, LineChart, Series, cohorts_in_order, group_push};

/// One row of `decision_curve.csv`.
#[derive(Debug, Clone, Copy)]
struct Point {
    threshold: f64,
    model: f64,
    treat_all: f64,
}

/// Lowest net benefit drawn: treat-all falls towards minus infinity as the
/// threshold approaches 1, and the region of interest is near zero, so the
/// y axis stops at this value (curves below it are clamped to the frame).
const NET_BENEFIT_FLOOR: f64 = -0.05;

/// Builds the decision-curve section: one figure per cohort.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "decision";
    const TITLE: &str = "Decision curves";
    let Some(file) = &files.decision_curve else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("decision_curve.csv", "the net benefit per threshold"),
        ));
    };
    let mut groups: ByCohort<Point> = ByCohort::new();

    for row in 0..file.rows.len() {
        group_push(
            &mut groups,
            file.text(row, "cohort")?,
            file.text(row, "model")?,
            Point {
                threshold: file.number(row, "threshold")?,
                model: file.number(row, "net_benefit")?,
                treat_all: file.number(row, "net_benefit_treat_all")?,
            },
        );
    }

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(format!(
        "Net benefit NB = TP/N − FP/N · p/(1 − p) at threshold probability p, against treating \
         every patient and treating none. The y axis stops at {NET_BENEFIT_FLOOR}, so curves \
         below it run along the bottom edge. Source: decision_curve.csv."
    ));

    for cohort in cohorts_in_order(&groups) {
        let models = &groups[&cohort];
        let mut series: Vec<Series> = models
            .iter()
            .enumerate()
            .map(|(index, (model, points))| Series {
                label: model.clone(),
                points: points.iter().map(|p| (p.threshold, p.model)).collect(),
                colour: series_colour(index),
                dashed: false,
                markers: false,
            })
            .collect();
        // Treat-all depends only on the cohort's prevalence, so every model
        // row has the same value; the first model's rows are drawn.
        let treat_all: Vec<(f64, f64)> = models
            .first()
            .map(|(_, points)| points.iter().map(|p| (p.threshold, p.treat_all)).collect())
            .unwrap_or_default();
        let top = models
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.model.max(p.treat_all)))
            .fold(0.0_f64, f64::max);
        series.push(Series {
            label: "Treat all".into(),
            points: treat_all,
            colour: REFERENCE,
            dashed: true,
            markers: false,
        });
        series.push(Series {
            label: "Treat none".into(),
            points: vec![(0.0, 0.0), (1.0, 0.0)],
            colour: "#000000",
            dashed: false,
            markers: false,
        });
        let (_, y_max) = nice_range(NET_BENEFIT_FLOOR, top.max(0.05));
        let name = cohort_name(&cohort).to_lowercase();
        let chart = LineChart {
            title: format!("Decision curves, {name}"),
            description: format!(
                "Decision curves on the {name} cohort: net benefit of each model, of treating all and of treating none, against the threshold probability."
            ),
            x_label: "Threshold probability".into(),
            y_label: "Net benefit (true positives per patient)".into(),
            x_range: (0.0, 1.0),
            y_range: (NET_BENEFIT_FLOOR, y_max),
            series,
            legend_bottom_right: false,
        };
        section.figures.push(Figure {
            name: format!("decision_{cohort}"),
            caption: format!("Decision curves, {name}."),
            svg: chart.to_svg(),
        });
    }

    Ok(section)
}
