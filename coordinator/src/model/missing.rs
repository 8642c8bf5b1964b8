//! Missing regions: median imputation plus a missing indicator.
//!
//! A habitat region can be absent for a patient (no voxel in the habitat)
//! or left out below the minimum region size, while the patient's lesion
//! was extracted. Dropping such patients would make each region's model
//! use another subset, so by default:
//!
//! - a patient who has the sequence's "whole" region but lacks r gets, for
//!   each feature of region r in sequence q, the median of that feature
//!   over the training patients who have r. An even count takes the mean
//!   of the two middle values.
//! - an indicator column `{q}_{r}_missing` (1 imputed, 0 observed, empty
//!   when the patient lacks the whole sequence) joins region r's columns,
//!   so the region's model can learn from the absence itself.
//!
//! A patient without the sequence's "whole" region lacks the sequence, not
//! the region, and keeps nulls. The medians come from training patients
//! only, so no validation value enters the imputed values.
//!
//! NOTE: the medians are fitted once on the whole training cohort, so the
//! cross-validation folds of the best-region choice see medians that
//! include their held-out patients. The effect is limited to imputed
//! values of a few patients, but those CV AUCs are slightly optimistic.

use serde::Serialize;

use crate::split::Cohort;
use crate::table::{FeatureColumn, StudyTable};

/// Region whose presence defines that a patient has a sequence.
pub const WHOLE_REGION: &str = "whole";

/// Imputation counts of one sequence and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionImputation {
    /// The sequence.
    pub sequence: String,
    /// The region.
    pub region: String,
    /// The indicator column added.
    pub indicator: String,
    /// Imputed patients per cohort: training, internal, external.
    pub imputed_training: usize,
    /// See `imputed_training`.
    pub imputed_internal: usize,
    /// See `imputed_training`.
    pub imputed_external: usize,
    /// Columns that no training patient has, left null.
    pub columns_without_training_values: usize,
}

/// Imputes missing regions in `table` and adds the indicator columns, as
/// the module documentation defines. Returns one record per sequence and
/// region with at least one imputed patient.
pub fn impute_missing_regions(table: &mut StudyTable) -> Vec<RegionImputation> {
    let n = table.patients.len();
    let mut records = Vec::new();

    // Per sequence, which patients have the whole lesion.
    let mut has_whole: std::collections::BTreeMap<String, Vec<bool>> = Default::default();
    for column in table.columns.iter().filter(|c| c.region == WHOLE_REGION) {
        let entry = has_whole
            .entry(column.sequence.clone())
            .or_insert_with(|| vec![false; n]);
        for (p, value) in column.values.iter().enumerate() {
            entry[p] |= value.is_some();
        }
    }

    let mut groups: Vec<(String, String)> = table
        .columns
        .iter()
        .filter(|c| c.region != WHOLE_REGION)
        .map(|c| (c.sequence.clone(), c.region.clone()))
        .collect();
    groups.dedup();
    groups.sort();
    groups.dedup();

    for (sequence, region) in groups {
        let Some(whole) = has_whole.get(&sequence) else {
            continue;
        };
        let indices: Vec<usize> = (0..table.columns.len())
            .filter(|&c| table.columns[c].sequence == sequence && table.columns[c].region == region)
            .collect();
        // A patient lacks the region when every region column is null.
        let lacks: Vec<bool> = (0..n)
            .map(|p| {
                whole[p]
                    && indices
                        .iter()
                        .all(|&c| table.columns[c].values[p].is_none())
            })
            .collect();
        if !lacks.iter().any(|&l| l) {
            continue;
        }

        let mut without_training = 0;
        for &c in &indices {
            let mut training: Vec<f64> = (0..n)
                .filter(|&p| table.patients[p].cohort == Cohort::Training)
                .filter_map(|p| table.columns[c].values[p])
                .collect();
            let Some(median) = median(&mut training) else {
                without_training += 1;
                continue;
            };
            for p in (0..n).filter(|&p| lacks[p]) {
                table.columns[c].values[p] = Some(median);
            }
        }

        let count = |cohort: Cohort| {
            (0..n)
                .filter(|&p| lacks[p] && table.patients[p].cohort == cohort)
                .count()
        };
        let indicator = format!("{sequence}_{region}_missing");
        let values = (0..n)
            .map(|p| whole[p].then_some(if lacks[p] { 1.0 } else { 0.0 }))
            .collect();
        let position = indices.last().map_or(table.columns.len(), |&c| c + 1);
        table.columns.insert(
            position,
            FeatureColumn {
                name: indicator.clone(),
                sequence: sequence.clone(),
                region: region.clone(),
                feature: "missing".into(),
                values,
            },
        );
        records.push(RegionImputation {
            sequence,
            region,
            indicator,
            imputed_training: count(Cohort::Training),
            imputed_internal: count(Cohort::InternalValidation),
            imputed_external: count(Cohort::ExternalValidation),
            columns_without_training_values: without_training,
        });
    }
    records
}

/// Median with the mean of the two middle values for an even count.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::PatientRecord;

    fn patient(pseudonym: &str, cohort: Cohort) -> PatientRecord {
        PatientRecord {
            center: "A".into(),
            pseudonym: pseudonym.into(),
            label: false,
            cohort,
        }
    }

    fn column(region: &str, values: Vec<Option<f64>>) -> FeatureColumn {
        FeatureColumn {
            name: format!("T1_{region}_original_firstorder_Mean"),
            sequence: "T1".into(),
            region: region.into(),
            feature: "original_firstorder_Mean".into(),
            values,
        }
    }

    fn table() -> StudyTable {
        StudyTable {
            patients: vec![
                patient("p1", Cohort::Training),
                patient("p2", Cohort::Training),
                patient("p3", Cohort::Training),
                patient("p4", Cohort::Training),
                patient("p5", Cohort::ExternalValidation),
                patient("p6", Cohort::InternalValidation),
            ],
            columns: vec![
                column(
                    "inner",
                    vec![Some(1.0), Some(4.0), None, Some(2.0), None, Some(50.0)],
                ),
                column(
                    "whole",
                    vec![Some(1.0), Some(1.0), Some(1.0), Some(1.0), Some(1.0), None],
                ),
            ],
        }
    }

    #[test]
    fn missing_region_imputed_with_training_median() {
        let mut table = table();
        let records = impute_missing_regions(&mut table);
        // Training values 1, 4, 2 (p6's 50 is internal validation): median 2.
        assert_eq!(
            table.columns[0].values,
            vec![
                Some(1.0),
                Some(4.0),
                Some(2.0),
                Some(2.0),
                Some(2.0),
                Some(50.0)
            ]
        );
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].imputed_training, 1);
        assert_eq!(records[0].imputed_external, 1);
        assert_eq!(records[0].imputed_internal, 0);
    }

    #[test]
    fn missing_region_indicator_follows_region_columns() {
        let mut table = table();
        impute_missing_regions(&mut table);
        let indicator = &table.columns[1];
        assert_eq!(indicator.name, "T1_inner_missing");
        assert_eq!(indicator.region, "inner");
        // p6 lacks the whole sequence, so its indicator stays null.
        assert_eq!(
            indicator.values,
            vec![Some(0.0), Some(0.0), Some(1.0), Some(0.0), Some(1.0), None]
        );
        assert_eq!(table.columns[2].region, "whole");
    }

    #[test]
    fn missing_region_none_missing_changes_nothing() {
        let mut table = table();
        table.columns[0].values = vec![Some(1.0); 6];
        assert!(impute_missing_regions(&mut table).is_empty());
        assert_eq!(table.columns.len(), 2);
    }

    #[test]
    fn median_of_even_count_averages_middle() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
