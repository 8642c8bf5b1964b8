//! Calibration plots per cohort: observed event fraction against mean
//! predicted probability per bin, one line per model, from
//! `calibration.csv`.

use super::super::section::{Section, missing};
use super::super::{ReportError, StudyFiles, cohort_name};
use super::axis::{REFERENCE, series_colour};
use super::{ByCohort, Figure, LineChart, Series, cohorts_in_order, group_push};

/// Builds the calibration section: one figure per cohort.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "calibration";
    const TITLE: &str = "Calibration";
    let Some(file) = &files.calibration else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("calibration.csv", "the binned calibration curves"),
        ));
    };
    let mut groups: ByCohort<(f64, f64)> = ByCohort::new();

    for row in 0..file.rows.len() {
        group_push(
            &mut groups,
            file.text(row, "cohort")?,
            file.text(row, "model")?,
            (
                file.number(row, "mean_predicted")?,
                file.number(row, "observed_fraction")?,
            ),
        );
    }

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Patients binned by predicted probability; each point is a bin's mean predicted \
         probability and its observed event fraction. Points on the diagonal mean perfect \
         calibration. Source: calibration.csv; Brier score, calibration slope and \
         Hosmer-Lemeshow test are in validation.json."
            .into(),
    );

    for cohort in cohorts_in_order(&groups) {
        let mut series: Vec<Series> = groups[&cohort]
            .iter()
            .enumerate()
            .map(|(index, (model, points))| Series {
                label: model.clone(),
                points: points.clone(),
                colour: series_colour(index),
                dashed: false,
                markers: true,
            })
            .collect();
        series.push(Series {
            label: "Perfect calibration".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            colour: REFERENCE,
            dashed: true,
            markers: false,
        });
        let name = cohort_name(&cohort).to_lowercase();
        let chart = LineChart {
            title: format!("Calibration, {name}"),
            description: format!(
                "Calibration curves on the {name} cohort: observed fraction of events against mean predicted probability per bin, with the diagonal of perfect calibration."
            ),
            x_label: "Mean predicted probability".into(),
            y_label: "Observed fraction with event".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            series,
            legend_bottom_right: true,
        };
        section.figures.push(Figure {
            name: format!("calibration_{cohort}"),
            caption: format!("Calibration, {name}."),
            svg: chart.to_svg(),
        });
    }

    Ok(section)
}
