//! SHAP plots of the fusion model: a bar chart of mean |SHAP| per feature
//! and cohort (`shap_importance.csv`), and a beeswarm per cohort of every
//! patient's SHAP value (`shap_values.csv`), coloured by the feature's
//! value rank within the cohort (`features.csv`).
//!
//! SHAP values are on the log-odds scale: for a logistic model with
//! standardised inputs, feature j adds β_j (z_j − mean z_j) to the
//! patient's radscore.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::super::section::{Section, missing};
use super::super::{COHORTS, ReportError, StudyFiles, cohort_name};
use super::axis::{Frame, HEIGHT, WIDTH, draw_x_ticks, nice_range, open_svg, series_colour};
use super::{ByCohort, Figure, cohorts_in_order, escape, group_push};

/// One beeswarm point: pseudonym, SHAP value (log-odds) and the feature
/// value, when `features.csv` has it.
type PatientShap = (String, f64, Option<f64>);

/// Left margin of the SHAP plots, room for feature names.
const NAME_MARGIN: f64 = 250.0;
/// Colour of low feature values (Okabe-Ito blue).
const LOW: (u8, u8, u8) = (0x00, 0x72, 0xB2);
/// Colour of high feature values (Okabe-Ito vermillion).
const HIGH: (u8, u8, u8) = (0xD5, 0x5E, 0x00);
/// Colour of a point whose feature value is unknown (a feature not in
/// `features.csv`, such as a missing-region indicator).
const UNKNOWN: &str = "#999999";

/// Shortens a feature column name for the axis: the sequence and region
/// prefix stay, and the image type `original_` goes.
fn short_name(feature: &str) -> String {
    let name = feature.replace("_original_", " ");
    if name.chars().count() > 38 {
        let tail: String = name
            .chars()
            .rev()
            .take(36)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    } else {
        name
    }
}

/// Builds the SHAP section.
pub fn section(files: &StudyFiles) -> Result<Section, ReportError> {
    const ID: &str = "shap";
    const TITLE: &str = "SHAP";
    let Some(importance) = &files.shap_importance else {
        return Ok(Section::omitted(
            ID,
            TITLE,
            missing("shap_importance.csv", "the fusion model's SHAP importances"),
        ));
    };

    let mut section = Section::new(ID, TITLE);
    section.paragraphs.push(
        "SHAP values of the fusion model on the log-odds scale: for a logistic model, a \
         feature's SHAP value is its coefficient times the patient's standardised value minus \
         the training mean. The bar chart shows the mean |SHAP| per cohort \
         (shap_importance.csv); each beeswarm shows every patient (shap_values.csv), coloured \
         from blue (lowest value of the feature in the cohort) to vermillion (highest)."
            .into(),
    );
    let mut bars: ByCohort<(String, f64)> = ByCohort::new();

    for row in 0..importance.rows.len() {
        let cohort = importance.text(row, "cohort")?;
        group_push(
            &mut bars,
            "all",
            cohort,
            (
                importance.text(row, "feature")?.to_string(),
                importance.number(row, "mean_abs_shap")?,
            ),
        );
    }
    let model = importance
        .rows
        .first()
        .map(|_| importance.text(0, "model"))
        .transpose()?
        .unwrap_or("fusion")
        .to_string();
    if let Some(by_cohort) = bars.get("all") {
        section.figures.push(bar_figure(&model, by_cohort));
    }
    match &files.shap_values {
        None => section.paragraphs.push(missing(
            "shap_values.csv",
            "per-patient SHAP values, so the beeswarm plots are left out",
        )),
        Some(values) => {
            let feature_values = feature_lookup(files)?;
            let mut points: ByCohort<PatientShap> = ByCohort::new();
            for row in 0..values.rows.len() {
                let pseudonym = values.text(row, "pseudonym")?;
                let feature = values.text(row, "feature")?;
                let value = feature_values
                    .get(&(pseudonym.to_string(), feature.to_string()))
                    .copied();
                group_push(
                    &mut points,
                    values.text(row, "cohort")?,
                    feature,
                    (
                        pseudonym.to_string(),
                        values.number(row, "shap_log_odds")?,
                        value,
                    ),
                );
            }
            for cohort in cohorts_in_order(&points) {
                section
                    .figures
                    .push(beeswarm_figure(&model, &cohort, &points[&cohort]));
            }
        }
    }

    Ok(section)
}

/// Reads each patient's feature values from `features.csv`, keyed by
/// (pseudonym, column); empty when the file is missing.
fn feature_lookup(files: &StudyFiles) -> Result<HashMap<(String, String), f64>, ReportError> {
    let mut lookup = HashMap::new();
    let (Some(features), Some(values)) = (&files.features, &files.shap_values) else {
        return Ok(lookup);
    };
    let mut columns: Vec<String> = Vec::new();

    for row in 0..values.rows.len() {
        let feature = values.text(row, "feature")?;
        if !columns.iter().any(|c| c == feature) && features.has_column(feature) {
            columns.push(feature.to_string());
        }
    }

    for row in 0..features.rows.len() {
        let pseudonym = features.text(row, "pseudonym")?;
        for feature in &columns {
            if let Some(value) = features.optional_number(row, feature)? {
                lookup.insert((pseudonym.to_string(), feature.clone()), value);
            }
        }
    }
    Ok(lookup)
}

/// Returns the features ordered by decreasing mean |SHAP| over `groups`.
fn feature_order<'a>(groups: impl Iterator<Item = (&'a String, f64)>) -> Vec<String> {
    let mut totals: Vec<(String, f64)> = Vec::new();

    for (feature, value) in groups {
        match totals.iter_mut().find(|(f, _)| f == feature) {
            Some((_, total)) => *total += value.abs(),
            None => totals.push((feature.clone(), value.abs())),
        }
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    totals.into_iter().map(|(f, _)| f).collect()
}

/// Draws the feature names on the y axis, one band per feature.
fn draw_feature_names(svg: &mut String, frame: &Frame, features: &[String]) -> f64 {
    let band = (frame.y.start - frame.y.end) / features.len().max(1) as f64;

    for (index, feature) in features.iter().enumerate() {
        let y = frame.y.end + band * (index as f64 + 0.5);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            frame.x.start - 8.0,
            y + 4.0,
            escape(&short_name(feature))
        );
    }
    band
}

fn bar_figure(model: &str, by_cohort: &[(String, Vec<(String, f64)>)]) -> Figure {
    let features = feature_order(
        by_cohort
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|(f, v)| (f, *v))),
    );
    let max = by_cohort
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    let (_, x_max) = nice_range(0.0, max.max(1e-6));
    let frame = Frame::with_left_margin((0.0, x_max), (0.0, 1.0), NAME_MARGIN);

    let mut svg = String::new();
    open_svg(
        &mut svg,
        &format!("SHAP importance, {model}"),
        &format!(
            "Mean absolute SHAP value of each of the {} features of {model}, one bar per cohort.",
            features.len()
        ),
    );

    let band = draw_feature_names(&mut svg, &frame, &features);
    let bar_height = band * 0.8 / by_cohort.len().max(1) as f64;

    for (cohort_index, (cohort, rows)) in by_cohort.iter().enumerate() {
        let colour_index = COHORTS
            .iter()
            .position(|(id, _)| id == cohort)
            .unwrap_or(cohort_index);
        for (feature, value) in rows {
            let Some(position) = features.iter().position(|f| f == feature) else {
                continue;
            };
            let y = frame.y.end + band * (position as f64 + 0.1) + bar_height * cohort_index as f64;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {value:.3}</title></rect>",
                frame.x.start,
                (frame.x.map(*value) - frame.x.start).max(0.0),
                bar_height * 0.9,
                series_colour(colour_index),
                escape(&format!("{feature}, {}", cohort_name(cohort)))
            );
        }
    }

    frame_and_x_label(&mut svg, &frame, "Mean |SHAP value| (log-odds)");
    let mut legend_y = frame.y.end + 14.0;

    for (cohort_index, (cohort, _)) in by_cohort.iter().enumerate() {
        let colour_index = COHORTS
            .iter()
            .position(|(id, _)| id == cohort)
            .unwrap_or(cohort_index);
        let x = frame.x.end - 170.0;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{legend_y:.1}\" font-size=\"12\">{}</text>",
            legend_y - 9.0,
            series_colour(colour_index),
            x + 20.0,
            escape(cohort_name(cohort))
        );
        legend_y += 16.0;
    }

    svg.push_str("</svg>");
    Figure {
        name: "shap_bar".into(),
        caption: format!("Mean |SHAP| per feature and cohort, {model}."),
        svg,
    }
}

fn frame_and_x_label(svg: &mut String, frame: &Frame, label: &str) {
    let _ = write!(
        svg,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#000000\"/>",
        frame.x.start,
        frame.y.end,
        frame.x.end - frame.x.start,
        frame.y.start - frame.y.end
    );
    draw_x_ticks(svg, frame);
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" text-anchor=\"middle\">{}</text>",
        (frame.x.start + frame.x.end) / 2.0,
        HEIGHT - 16.0,
        escape(label)
    );
}

/// Mixes [`LOW`] and [`HIGH`] at `t` in [0, 1].
fn value_colour(t: f64) -> String {
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t.clamp(0.0, 1.0)).round() as u8;
    format!(
        "#{:02X}{:02X}{:02X}",
        mix(LOW.0, HIGH.0),
        mix(LOW.1, HIGH.1),
        mix(LOW.2, HIGH.2)
    )
}

fn beeswarm_figure(model: &str, cohort: &str, by_feature: &[(String, Vec<PatientShap>)]) -> Figure {
    let features = feature_order(
        by_feature
            .iter()
            .flat_map(|(f, rows)| rows.iter().map(move |(_, v, _)| (f, *v))),
    );
    let (low, high) = by_feature
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(_, v, _)| *v))
        .fold((0.0_f64, 0.0_f64), |(l, h), v| (l.min(v), h.max(v)));
    let frame = Frame::with_left_margin(nice_range(low, high), (0.0, 1.0), NAME_MARGIN);
    let name = cohort_name(cohort).to_lowercase();

    let mut svg = String::new();
    open_svg(
        &mut svg,
        &format!("SHAP values, {name}"),
        &format!(
            "Beeswarm of the SHAP values of {model} on the {name} cohort: one point per patient and feature, coloured from blue (low feature value) to vermillion (high)."
        ),
    );

    let band = draw_feature_names(&mut svg, &frame, &features);
    let zero = frame.x.map(0.0);
    let _ = write!(
        svg,
        "<line x1=\"{zero:.1}\" y1=\"{:.1}\" x2=\"{zero:.1}\" y2=\"{:.1}\" stroke=\"#555555\" stroke-dasharray=\"4 3\"/>",
        frame.y.end, frame.y.start
    );

    for (feature, rows) in by_feature {
        let Some(position) = features.iter().position(|f| f == feature) else {
            continue;
        };
        let centre = frame.y.end + band * (position as f64 + 0.5);
        let mut ranked: Vec<f64> = rows.iter().filter_map(|(_, _, v)| *v).collect();
        ranked.sort_by(f64::total_cmp);
        let mut sorted: Vec<&(String, f64, Option<f64>)> = rows.iter().collect();
        sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
        // Points in the same 4-pixel column stack alternately above and
        // below the band's centre line, 3 pixels apart.
        let mut column_counts: HashMap<i64, usize> = HashMap::new();
        for (_, shap, value) in sorted {
            let x = frame.x.map(*shap);
            let count = column_counts.entry((x / 4.0).floor() as i64).or_insert(0);
            let offset_steps =
                (*count as f64 / 2.0).ceil() * if count.is_multiple_of(2) { 1.0 } else { -1.0 };
            *count += 1;
            let y = centre + (offset_steps * 3.0).clamp(-band * 0.45, band * 0.45);
            let colour = match value {
                Some(v) if ranked.len() > 1 => {
                    let rank = ranked.partition_point(|r| r < v) as f64;
                    value_colour(rank / (ranked.len() - 1) as f64)
                }
                Some(_) => value_colour(0.5),
                None => UNKNOWN.to_string(),
            };
            let _ = write!(
                svg,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\" fill-opacity=\"0.85\"/>"
            );
        }
    }

    frame_and_x_label(&mut svg, &frame, "SHAP value (log-odds of the event)");
    let x = WIDTH - 150.0;
    let _ = write!(
        svg,
        "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\"><tspan fill=\"{}\">● low</tspan> <tspan fill=\"{}\">● high</tspan> value</text>",
        frame.y.end - 6.0,
        value_colour(0.0),
        value_colour(1.0)
    );

    svg.push_str("</svg>");
    Figure {
        name: format!("shap_beeswarm_{cohort}"),
        caption: format!("SHAP values per patient, {model}, {name}."),
        svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_colour_ends_are_okabe_ito() {
        assert_eq!(value_colour(0.0), "#0072B2");
        assert_eq!(value_colour(1.0), "#D55E00");
    }

    #[test]
    fn feature_order_sorts_by_total_abs_shap() {
        let a = "a".to_string();
        let b = "b".to_string();
        let order = feature_order([(&a, 0.1), (&b, -0.5), (&a, 0.2)].into_iter());
        assert_eq!(order, vec!["b".to_string(), "a".to_string()]);
    }
}
