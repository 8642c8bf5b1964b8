//! ComBat harmonisation of the study table, fitted on training patients.
//!
//! Reference batch: the training patients of the development centers
//! (M-ComBat). Every other center is its own batch and is mapped onto the
//! reference location and scale from its own feature values, without its
//! labels. Patients of a development center keep their values, so internal
//! validation patients, who share the training scanner, are not adjusted.
//! ComBat runs per sequence block over the patients that have every column
//! of that block, and it is fitted from per-batch sums (n, Σx, Σx²), the
//! statistics a worker could send instead of its rows.

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::config::{CenterConfig, CenterRole, Harmonization};
use crate::split::Cohort;
use crate::stats::{BatchSums, ComBatFit, ComBatOptions};
use crate::table::StudyTable;

/// Result of harmonising one sequence block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HarmonizationReport {
    /// The sequence.
    pub sequence: String,
    /// Batches adjusted, with their patient counts.
    pub adjusted_batches: Vec<(String, usize)>,
    /// Reference patients.
    pub reference_patients: usize,
    /// Reason the block was left unadjusted, if it was.
    pub skipped: Option<String>,
}

/// Harmonises `table` in place and reports what was done per sequence.
pub fn harmonize(
    table: &mut StudyTable,
    centers: &[CenterConfig],
    method: Harmonization,
) -> Vec<HarmonizationReport> {
    let options = match method {
        Harmonization::None => return Vec::new(),
        Harmonization::Combat => ComBatOptions {
            parametric: true,
            ..ComBatOptions::default()
        },
        Harmonization::CombatNonParametric => ComBatOptions {
            parametric: false,
            ..ComBatOptions::default()
        },
    };
    let mut sequences: Vec<String> = table.columns.iter().map(|c| c.sequence.clone()).collect();
    sequences.dedup();

    let mut reports = Vec::new();
    for sequence in sequences {
        let columns: Vec<usize> = (0..table.columns.len())
            .filter(|&c| table.columns[c].sequence == sequence)
            .collect();
        let report = match harmonize_block(table, centers, &columns, options) {
            Ok((reference_patients, adjusted_batches)) => HarmonizationReport {
                sequence: sequence.clone(),
                adjusted_batches,
                reference_patients,
                skipped: None,
            },
            Err(reason) => {
                tracing::warn!(%sequence, %reason, "ComBat left this sequence unadjusted");
                HarmonizationReport {
                    sequence: sequence.clone(),
                    adjusted_batches: Vec::new(),
                    reference_patients: 0,
                    skipped: Some(reason),
                }
            }
        };
        reports.push(report);
    }
    reports
}

type BlockResult = Result<(usize, Vec<(String, usize)>), String>;

fn harmonize_block(
    table: &mut StudyTable,
    centers: &[CenterConfig],
    columns: &[usize],
    options: ComBatOptions,
) -> BlockResult {
    let complete: Vec<usize> = (0..table.patients.len())
        .filter(|&p| {
            columns
                .iter()
                .all(|&c| table.columns[c].values[p].is_some())
        })
        .collect();
    let matrix = Array2::from_shape_fn((complete.len(), columns.len()), |(row, column)| {
        table.columns[columns[column]].values[complete[row]].unwrap_or(f64::NAN)
    });
    let role = |center: &str| {
        centers
            .iter()
            .find(|c| c.id == center)
            .map(|c| c.role)
            .unwrap_or(CenterRole::External)
    };

    // Reference: training patients of development centers.
    let reference_rows: Vec<usize> = (0..complete.len())
        .filter(|&row| table.patients[complete[row]].cohort == Cohort::Training)
        .collect();
    let reference =
        BatchSums::from_rows("reference", matrix.select(Axis(0), &reference_rows).view())
            .map_err(|e| format!("reference batch: {e}"))?;

    // One batch per external center.
    let mut batches: Vec<(String, Vec<usize>)> = Vec::new();
    for (row, &patient) in complete.iter().enumerate() {
        let center = &table.patients[patient].center;
        if role(center) == CenterRole::Development {
            continue;
        }
        match batches.iter_mut().find(|(name, _)| name == center) {
            Some((_, rows)) => rows.push(row),
            None => batches.push((center.clone(), vec![row])),
        }
    }
    if batches.is_empty() {
        return Err("no external center to adjust".into());
    }
    let others = batches
        .iter()
        .map(|(name, rows)| BatchSums::from_rows(name.clone(), matrix.select(Axis(0), rows).view()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let fit = ComBatFit::fit(&reference, &others, options).map_err(|e| e.to_string())?;

    let mut adjusted_batches = Vec::new();
    for (name, rows) in &batches {
        let adjusted = fit
            .apply(name, matrix.select(Axis(0), rows).view())
            .map_err(|e| format!("center {name}: {e}"))?;
        for (index, &row) in rows.iter().enumerate() {
            for (position, &column) in columns.iter().enumerate() {
                table.columns[column].values[complete[row]] = Some(adjusted[[index, position]]);
            }
        }
        adjusted_batches.push((name.clone(), rows.len()));
    }
    Ok((reference_rows.len(), adjusted_batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{FeatureColumn, PatientRecord};

    /// Center A (development): 12 training and 4 internal patients; center
    /// B (external): 10 patients whose values are shifted by 100 and scaled
    /// by 3, a scanner effect ComBat should mostly remove.
    fn table() -> StudyTable {
        let mut patients = Vec::new();
        let mut columns: Vec<FeatureColumn> = (0..25)
            .map(|f| FeatureColumn {
                name: format!("T1_whole_f{f}"),
                sequence: "T1".into(),
                region: "whole".into(),
                feature: format!("f{f}"),
                values: Vec::new(),
            })
            .collect();
        for i in 0..26 {
            let (center, cohort) = match i {
                0..12 => ("A", Cohort::Training),
                12..16 => ("A", Cohort::InternalValidation),
                _ => ("B", Cohort::ExternalValidation),
            };
            patients.push(PatientRecord {
                center: center.into(),
                pseudonym: format!("{center}-{i}"),
                label: i % 2 == 0,
                cohort,
            });
            for (f, column) in columns.iter_mut().enumerate() {
                let base = ((i * 7 + f * 3) % 11) as f64 + f as f64;
                let value = if center == "B" {
                    100.0 + 3.0 * base
                } else {
                    base
                };
                column.values.push(Some(value));
            }
        }
        StudyTable { patients, columns }
    }

    fn centers() -> Vec<CenterConfig> {
        vec![
            CenterConfig {
                id: "A".into(),
                endpoint: "http://127.0.0.1:1".into(),
                role: CenterRole::Development,
                server_name: None,
                mode: crate::config::CenterMode::Direct,
            },
            CenterConfig {
                id: "B".into(),
                endpoint: "http://127.0.0.1:2".into(),
                role: CenterRole::External,
                server_name: None,
                mode: crate::config::CenterMode::Direct,
            },
        ]
    }

    #[test]
    fn harmonize_leaves_development_center_unchanged() {
        let original = table();
        let mut harmonized = original.clone();
        let reports = harmonize(&mut harmonized, &centers(), Harmonization::Combat);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].skipped, None);
        assert_eq!(reports[0].adjusted_batches, vec![("B".to_string(), 10)]);
        for column in 0..original.columns.len() {
            assert_eq!(
                harmonized.columns[column].values[..16],
                original.columns[column].values[..16]
            );
        }
    }

    #[test]
    fn harmonize_moves_external_mean_to_reference() {
        let mut harmonized = table();
        harmonize(&mut harmonized, &centers(), Harmonization::Combat);
        let mean =
            |values: &[Option<f64>]| values.iter().flatten().sum::<f64>() / values.len() as f64;
        let column = &harmonized.columns[0].values;
        // Before: B's mean is about 100 + 3 x 5 = 115 against A's 5. After
        // ComBat, whose shrinkage keeps a small part of the batch effect,
        // the gap is below 2 units of this feature's scale (SD about 3).
        let gap = (mean(&column[16..]) - mean(&column[..12])).abs();
        assert!(gap < 2.0, "gap {gap}");
    }

    #[test]
    fn harmonize_none_changes_nothing() {
        let original = table();
        let mut same = original.clone();
        assert!(harmonize(&mut same, &centers(), Harmonization::None).is_empty());
        assert_eq!(same.columns, original.columns);
    }
}
