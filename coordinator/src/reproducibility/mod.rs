//! The reproducibility filter: ICC over perturbed copies, computed from the
//! workers' sums (perturbation design, Zwanenburg et al., Sci Rep 2019).
//!
//! Steps:
//! 1. [`select_patients`] draws up to `patients` training patients with the
//!    study seed, and tops each center's share up to its `min_patients`
//!    (the worker would refuse fewer) or leaves that center out.
//! 2. Each center with a share runs one more extraction round with
//!    `perturbation` set and only those pseudonyms, then returns the sums
//!    n, T, Q, Σ R_i² and C_j per feature (contract
//!    `FetchReproducibilitySums`). No per-patient value leaves the worker.
//! 3. [`merge_sums`] adds the centers' sums per feature and computes every
//!    ICC form exactly. [`IccReport::keep`] returns whether a table column
//!    passes the threshold (strictly greater, as in the method).
//!
//! The k measurements of a patient are its k perturbed copies, each a new
//! random draw, so copy j of one patient has nothing in common with copy j
//! of another. The design is therefore one-way, and ICC(1,1) is the
//! default form (Zwanenburg et al., Sci Rep 2019). ICC(2,1) and ICC(3,1)
//! are computed and reported as well, and can be chosen.

mod round;

pub use round::run_round;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::{Column, DataFrame};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::FeatureIcc;
use crate::output::write_json;
use crate::split::Cohort;
use crate::stats::icc::{ConfidenceInterval, IccSums};
use crate::table::{StudyTable, TableError, write_csv};

/// Maximum number of copies per patient that a worker makes. A worker
/// rejects larger requests.
pub const MAX_REPEATS: u32 = 100;

/// Largest grow/shrink range accepted, in mm. The perturbation models
/// segmentation uncertainty of a few voxels; a larger range erodes most
/// lesions away, and every copy then fails at the worker.
pub const MAX_VOLUME_CHANGE_MM: f64 = 10.0;

/// Settings of the reproducibility filter, `[icc]` in study.toml.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IccConfig {
    /// Whether the filter runs. Default true.
    pub enabled: bool,
    /// ICC form that decides: "icc1" (default), "icc2" or "icc3" for
    /// ICC(1,1), ICC(2,1) and ICC(3,1).
    pub form: IccChoice,
    /// A feature is kept when its ICC is strictly greater. Default 0.80.
    pub threshold: f64,
    /// Training patients drawn for the perturbation round. Default 30.
    pub patients: usize,
    /// Perturbed copies per patient (k). Default 10.
    pub repeats: u32,
    /// Largest rotation, degrees. Default 10.
    pub max_angle_deg: f64,
    /// Largest grow/shrink distance of the mask, mm. Default 1.
    pub max_volume_change_mm: f64,
    /// Whether copies get Gaussian noise at the image's noise level.
    /// Default true.
    pub noise: bool,
}

impl Default for IccConfig {
    fn default() -> Self {
        IccConfig {
            enabled: true,
            form: IccChoice::Icc1,
            threshold: 0.80,
            patients: 30,
            repeats: 10,
            max_angle_deg: 10.0,
            max_volume_change_mm: 1.0,
            noise: true,
        }
    }
}

/// The ICC form that decides which features are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IccChoice {
    /// ICC(1,1), one-way random, absolute agreement.
    Icc1,
    /// ICC(2,1), two-way random, absolute agreement.
    Icc2,
    /// ICC(3,1), two-way mixed, consistency.
    Icc3,
}

impl IccConfig {
    /// Checks the values; on failure returns (key, value, expected).
    pub fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        if !(self.threshold.is_finite() && (-1.0..1.0).contains(&self.threshold)) {
            return Err((
                "icc.threshold",
                self.threshold.to_string(),
                "a number from -1 up to (not including) 1",
            ));
        }
        if self.patients < 2 {
            return Err((
                "icc.patients",
                self.patients.to_string(),
                "at least 2 patients",
            ));
        }
        if !(2..=MAX_REPEATS).contains(&self.repeats) {
            return Err((
                "icc.repeats",
                self.repeats.to_string(),
                "from 2 to 100 copies per patient",
            ));
        }
        if !(self.max_angle_deg.is_finite() && (0.0..=180.0).contains(&self.max_angle_deg)) {
            return Err((
                "icc.max_angle_deg",
                self.max_angle_deg.to_string(),
                "an angle from 0 to 180 degrees",
            ));
        }
        if !(0.0..=MAX_VOLUME_CHANGE_MM).contains(&self.max_volume_change_mm) {
            return Err((
                "icc.max_volume_change_mm",
                self.max_volume_change_mm.to_string(),
                "a distance from 0 to 10 mm",
            ));
        }
        Ok(())
    }
}

/// The patients drawn for the perturbation round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientDraw {
    /// Pseudonyms per center, sorted.
    pub shares: BTreeMap<String, Vec<String>>,
    /// Centers left out, with the reason.
    pub left_out: Vec<(String, String)>,
}

/// Draws the perturbation-round patients: training patients ordered by
/// SHA-256(seed ‖ "icc" ‖ pseudonym), the first `config.patients` of them,
/// then per center a top-up to `min_patients(center)` from that center's
/// next training patients in the same order. The order depends only on the
/// seed and the pseudonyms, not on row order or on how patients are spread
/// over centers. A center with fewer training patients than its minimum is
/// left out and named in the second value.
pub fn select_patients(
    table: &StudyTable,
    config: &IccConfig,
    seed: u64,
    min_patients: impl Fn(&str) -> usize,
) -> PatientDraw {
    let mut ranked: Vec<([u8; 32], &str, &str)> = table
        .patients
        .iter()
        .filter(|p| p.cohort == Cohort::Training)
        .map(|p| {
            let mut hasher = Sha256::new();
            hasher.update(seed.to_le_bytes());
            hasher.update(b"icc");
            hasher.update(p.pseudonym.as_bytes());
            (
                hasher.finalize().into(),
                p.center.as_str(),
                p.pseudonym.as_str(),
            )
        })
        .collect();
    ranked.sort_unstable();
    let order: Vec<(&str, &str)> = ranked
        .iter()
        .map(|(_, center, pseudonym)| (*center, *pseudonym))
        .collect();

    let mut chosen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (center, pseudonym) in order.iter().take(config.patients) {
        chosen
            .entry(center.to_string())
            .or_default()
            .push(pseudonym.to_string());
    }

    let mut left_out = Vec::new();
    let centers: Vec<String> = chosen.keys().cloned().collect();
    for center in centers {
        let minimum = min_patients(&center);
        let available: Vec<&str> = order
            .iter()
            .filter(|(c, _)| *c == center)
            .map(|(_, p)| *p)
            .collect();
        if available.len() < minimum {
            chosen.remove(&center);
            left_out.push((
                center,
                format!(
                    "{} training patients, fewer than the site's min_patients = {minimum}",
                    available.len()
                ),
            ));
            continue;
        }
        if let Some(share) = chosen.get_mut(&center) {
            for pseudonym in available {
                if share.len() >= minimum {
                    break;
                }
                if !share.iter().any(|p| p == pseudonym) {
                    share.push(pseudonym.to_string());
                }
            }
            share.sort_unstable();
        }
    }
    PatientDraw {
        shares: chosen,
        left_out,
    }
}

/// The ICC of one feature, pooled over centers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IccRow {
    /// Table column name, `{sequence}_{region}_{feature}`.
    pub column: String,
    /// Sequence.
    pub sequence: String,
    /// Region.
    pub region: String,
    /// PyRadiomics feature name.
    pub feature: String,
    /// Patients (subjects).
    pub n: usize,
    /// Copies per patient.
    pub k: usize,
    /// ICC(1,1).
    pub icc1_1: f64,
    /// ICC(2,1).
    pub icc2_1: f64,
    /// ICC(3,1).
    pub icc3_1: f64,
    /// 95% CI of the deciding form, when defined.
    pub ci: Option<ConfidenceInterval>,
    /// Whether the deciding form is above the threshold.
    pub kept: bool,
}

/// The filter's result over every feature that had sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IccReport {
    /// The deciding form and threshold.
    pub form: Option<IccChoice>,
    /// Threshold (kept when ICC > threshold).
    pub threshold: f64,
    /// One row per feature.
    pub rows: Vec<IccRow>,
    /// Centers whose sums were used.
    pub centers: Vec<String>,
    /// Centers the draw left out (too few training patients for their
    /// policy), with the reason.
    pub left_out: Vec<(String, String)>,
    /// Centers whose perturbation round or sums failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Sequences with no sums at all; their columns are kept unfiltered.
    pub unfiltered_sequences: Vec<String>,
    /// The reason the filter did not run, when it did not.
    pub not_run: Option<String>,
}

impl IccReport {
    /// Returns the report of a filter that did not run: every sequence
    /// unfiltered, with the configured form and threshold for the record.
    pub fn not_run(config: &IccConfig, sequences: &[String], reason: String) -> Self {
        IccReport {
            form: Some(config.form),
            threshold: config.threshold,
            unfiltered_sequences: sequences.to_vec(),
            not_run: Some(reason),
            ..IccReport::default()
        }
    }

    /// Returns whether table column `name` of `sequence` passes. A column
    /// whose feature has an ICC at or below the threshold is dropped, and
    /// every column of an unfiltered sequence passes.
    pub fn keep(&self, sequence: &str, name: &str) -> bool {
        if self.unfiltered_sequences.iter().any(|s| s == sequence) {
            return true;
        }
        self.rows.iter().any(|row| row.column == name && row.kept)
    }
}

/// Adds the centers' sums per feature and computes the ICC of each.
///
/// # Errors
///
/// A message naming the feature when two centers' sums cannot be merged
/// (different k) or the pooled ICC cannot be computed (fewer than 2
/// patients).
pub fn merge_sums(
    replies: &[(String, Vec<FeatureIcc>)],
    config: &IccConfig,
    sequences: &[String],
) -> Result<IccReport, String> {
    let mut pooled: BTreeMap<(String, String, String), IccSums> = BTreeMap::new();
    for (center, features) in replies {
        for entry in features {
            let key = (
                entry.sequence.clone(),
                entry.region.clone(),
                entry.feature.clone(),
            );
            match pooled.get_mut(&key) {
                Some(sums) => sums.merge(&entry.sums).map_err(|error| {
                    format!(
                        "center {center}: sums of {}_{}_{} do not merge: {error}",
                        key.0, key.1, key.2
                    )
                })?,
                None => {
                    pooled.insert(key, entry.sums.clone());
                }
            }
        }
    }

    let mut rows = Vec::with_capacity(pooled.len());
    for ((sequence, region, feature), sums) in pooled {
        let column = format!("{sequence}_{region}_{feature}");
        let result = sums
            .icc()
            .map_err(|error| format!("ICC of {column}: {error}"))?;
        let (value, ci) = match config.form {
            IccChoice::Icc1 => (result.icc1_1, result.ci1_1),
            IccChoice::Icc2 => (result.icc2_1, result.ci2_1),
            IccChoice::Icc3 => (result.icc3_1, result.ci3_1),
        };
        rows.push(IccRow {
            column,
            sequence,
            region,
            feature,
            n: result.n,
            k: result.k,
            icc1_1: result.icc1_1,
            icc2_1: result.icc2_1,
            icc3_1: result.icc3_1,
            ci,
            kept: value > config.threshold,
        });
    }

    let with_sums: BTreeSet<&str> = rows.iter().map(|row| row.sequence.as_str()).collect();
    let unfiltered_sequences = sequences
        .iter()
        .filter(|s| !with_sums.contains(s.as_str()))
        .cloned()
        .collect();
    Ok(IccReport {
        form: Some(config.form),
        threshold: config.threshold,
        rows,
        centers: replies.iter().map(|(center, _)| center.clone()).collect(),
        left_out: Vec::new(),
        failed: Vec::new(),
        unfiltered_sequences,
        not_run: None,
    })
}

/// Removes the table columns that the report drops; returns how many
/// columns each sequence had before and after.
pub fn apply(table: &mut StudyTable, report: &IccReport) -> BTreeMap<String, (usize, usize)> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for column in &table.columns {
        counts.entry(column.sequence.clone()).or_default().0 += 1;
    }
    table
        .columns
        .retain(|column| report.keep(&column.sequence, &column.name));
    for column in &table.columns {
        counts.entry(column.sequence.clone()).or_default().1 += 1;
    }
    counts
}

/// Writes `icc.csv` (one row per feature) and `icc.json` (the report with
/// the column counts per sequence before and after the filter).
///
/// # Errors
///
/// [`TableError::Write`] naming the file.
pub fn write_report(
    out_dir: &Path,
    report: &IccReport,
    counts: &BTreeMap<String, (usize, usize)>,
) -> Result<(), TableError> {
    let rows = &report.rows;
    let path = out_dir.join("icc.csv");
    let text = |f: fn(&IccRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let number = |f: fn(&IccRow) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    let count = |f: fn(&IccRow) -> usize| rows.iter().map(|r| f(r) as u64).collect::<Vec<_>>();
    let mut frame = DataFrame::new_infer_height(vec![
        Column::new("column".into(), text(|r| &r.column)),
        Column::new("sequence".into(), text(|r| &r.sequence)),
        Column::new("region".into(), text(|r| &r.region)),
        Column::new("feature".into(), text(|r| &r.feature)),
        Column::new("n".into(), count(|r| r.n)),
        Column::new("k".into(), count(|r| r.k)),
        Column::new("icc1_1".into(), number(|r| r.icc1_1)),
        Column::new("icc2_1".into(), number(|r| r.icc2_1)),
        Column::new("icc3_1".into(), number(|r| r.icc3_1)),
        Column::new(
            "ci_low".into(),
            rows.iter()
                .map(|r| r.ci.map(|ci| ci.lower))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "ci_high".into(),
            rows.iter()
                .map(|r| r.ci.map(|ci| ci.upper))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "kept".into(),
            rows.iter().map(|r| r.kept).collect::<Vec<_>>(),
        ),
    ])
    .map_err(|error| TableError::Write {
        path: path.display().to_string(),
        message: error.to_string(),
    })?;
    write_csv(&mut frame, &path)?;

    let columns: BTreeMap<&String, serde_json::Value> = counts
        .iter()
        .map(|(sequence, (before, after))| {
            (
                sequence,
                serde_json::json!({ "before": before, "after": after }),
            )
        })
        .collect();
    write_json(
        &out_dir.join("icc.json"),
        &serde_json::json!({
            "form": report.form,
            "threshold": report.threshold,
            "centers": report.centers,
            "left_out": report.left_out,
            "failed": report.failed,
            "unfiltered_sequences": report.unfiltered_sequences,
            "not_run": report.not_run,
            "columns": columns,
        }),
    )
}

#[cfg(test)]
mod tests;
