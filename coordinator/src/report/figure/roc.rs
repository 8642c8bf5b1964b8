//! ROC curves per cohort, one line per model, from the patient scores in
//! `predictions.csv`.

use super::super::section::models::metrics_rows;
use super::super::section::{Section, missing};
use super::super::table::decimal;
use super::super::{ReportError, StudyFiles, cohort_name};
use super::axis::{REFERENCE, series_colour};
use super::{ByCohort, Figure, LineChart, Series, cohorts_in_order, group_push};

/// Returns the empirical ROC curve of `scores` (score, event) as
/// (false-positive rate, true-positive rate) points from (0, 0) to (1, 1).
/// Tied scores form one step, so ties draw a diagonal segment, as in the
/// trapezoidal AUC.
pub fn roc_points(scores: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let positives = scores.iter().filter(|(_, e)| *e).count();
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return Vec::new();
    }
    let mut sorted: Vec<(f64, bool)> = scores.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut index = 0;
    while index < sorted.len() {
        let score = sorted[index].0;
        while index < sorted.len() && sorted[index].0 == score {
            if sorted[index].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            index += 1;
        }
        points.push((fp as f64 / negatives as f64, tp as f64 / positives as f64));
    }
    points
}

/// Returns the trapezoidal area under `points`.
pub fn area(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}

/// Builds the ROC section: one figure per cohort.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "roc";
    const TITLE: &str = "ROC curves";
    let Some(file) = &files.predictions else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing(
                "predictions.csv",
                "the patient scores the ROC curves are drawn from",
            ),
        ));
    };
    let metrics = metrics_rows(&files.metrics)?;
    let mut groups: ByCohort<(f64, bool)> = ByCohort::new();

    for row in 0..file.rows.len() {
        let score = file.number(row, "score")?;
        let event = file.label(row, "label")?;
        group_push(
            &mut groups,
            file.text(row, "cohort")?,
            file.text(row, "model")?,
            (score, event),
        );
    }

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "Empirical ROC curves of the predicted probabilities in predictions.csv; the legend \
         gives each model's AUC from metrics.csv. Centers that validate by scores only send \
         ROC points instead of scores, so they are not drawn here."
            .into(),
    );

    for cohort in cohorts_in_order(&groups) {
        let mut series = Vec::new();
        for (index, (model, scores)) in groups[&cohort].iter().enumerate() {
            let auc = metrics
                .iter()
                .find(|m| m.model == *model && m.cohort == cohort)
                .and_then(|m| m.auc);
            series.push(Series {
                label: format!("{model} (AUC {})", decimal(auc)),
                points: roc_points(scores),
                colour: series_colour(index),
                dashed: false,
                markers: false,
            });
        }
        series.push(Series {
            label: "Chance".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            colour: REFERENCE,
            dashed: true,
            markers: false,
        });
        let name = cohort_name(&cohort);
        let chart = LineChart {
            title: format!("ROC, {}", name.to_lowercase()),
            description: format!(
                "ROC curves of {} models on the {} cohort: true-positive rate against false-positive rate, with the chance diagonal.",
                groups[&cohort].len(),
                name.to_lowercase()
            ),
            x_label: "False-positive rate (1 − specificity)".into(),
            y_label: "True-positive rate (sensitivity)".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            series,
            legend_bottom_right: true,
        };
        section.figures.push(Figure {
            name: format!("roc_{cohort}"),
            caption: format!("ROC curves, {}.", name.to_lowercase()),
            svg: chart.to_svg(),
        });
    }

    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_points_perfect_separation() {
        // Both events score above both non-events: the curve runs up the
        // left edge, then along the top, and its area is exactly 1.
        let points = roc_points(&[(0.9, true), (0.8, true), (0.2, false), (0.1, false)]);
        assert_eq!(
            points,
            vec![(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(area(&points), 1.0);
    }

    #[test]
    fn roc_area_counts_ties_as_half() {
        // One event and one non-event tie at 0.5, and one event scores 0.9:
        // Mann-Whitney AUC = (1 + 0.5) / 2 = 0.75 by hand.
        let points = roc_points(&[(0.9, true), (0.5, true), (0.5, false)]);
        assert!((area(&points) - 0.75).abs() < 1e-12, "{points:?}");
    }

    #[test]
    fn roc_points_one_class_is_empty() {
        assert!(roc_points(&[(0.3, true), (0.4, true)]).is_empty());
    }
}
