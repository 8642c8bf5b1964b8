//! Assignment of patients to training, internal and external validation.
//!
//! Development centers are split per outcome class: within a center and
//! class, patients are ordered by SHA-256(seed ‖ pseudonym) and the first
//! round(train_fraction × n) go to training, the rest to internal
//! validation. The order depends only on the seed and the pseudonym, so the
//! split is the same whatever order the workers answer in. Every patient of
//! an external center is in external validation.

use sha2::{Digest, Sha256};

use crate::config::CenterRole;

/// The cohort a patient belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    /// Fits every model and cut-off.
    Training,
    /// Held-out patients of the development centers.
    InternalValidation,
    /// Patients of the external centers.
    ExternalValidation,
}

impl Cohort {
    /// All cohorts, in report order.
    pub const ALL: [Cohort; 3] = [
        Cohort::Training,
        Cohort::InternalValidation,
        Cohort::ExternalValidation,
    ];

    /// Returns the snake_case name used in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Cohort::Training => "training",
            Cohort::InternalValidation => "internal_validation",
            Cohort::ExternalValidation => "external_validation",
        }
    }
}

/// One patient's inputs to the split.
#[derive(Debug, Clone)]
pub struct SplitInput<'a> {
    /// The patient's pseudonym.
    pub pseudonym: &'a str,
    /// Outcome.
    pub label: bool,
    /// Role of the patient's center.
    pub role: CenterRole,
    /// The patient's center.
    pub center: &'a str,
}

/// Returns each patient's cohort, in input order.
pub fn assign_cohorts(patients: &[SplitInput<'_>], train_fraction: f64, seed: u64) -> Vec<Cohort> {
    let mut cohorts = vec![Cohort::ExternalValidation; patients.len()];

    let mut groups: std::collections::BTreeMap<(&str, bool), Vec<(String, usize)>> =
        Default::default();
    for (index, patient) in patients.iter().enumerate() {
        if patient.role == CenterRole::Development {
            groups
                .entry((patient.center, patient.label))
                .or_default()
                .push((split_key(seed, patient.pseudonym), index));
        }
    }
    for members in groups.values_mut() {
        members.sort();
        let n_train = (train_fraction * members.len() as f64).round() as usize;
        for (position, (_, index)) in members.iter().enumerate() {
            cohorts[*index] = if position < n_train {
                Cohort::Training
            } else {
                Cohort::InternalValidation
            };
        }
    }
    cohorts
}

fn split_key(seed: u64, pseudonym: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(pseudonym.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patients(n_negative: usize, n_positive: usize) -> Vec<(String, bool)> {
        (0..n_negative)
            .map(|i| (format!("A-n{i}"), false))
            .chain((0..n_positive).map(|i| (format!("A-p{i}"), true)))
            .collect()
    }

    fn inputs(list: &[(String, bool)], role: CenterRole) -> Vec<SplitInput<'_>> {
        list.iter()
            .map(|(pseudonym, label)| SplitInput {
                pseudonym,
                label: *label,
                role,
                center: "A",
            })
            .collect()
    }

    #[test]
    fn split_is_stratified_with_rounded_counts() {
        // 21 negatives and 12 positives, as STS center A with MR images:
        // round(0.7 x 21) = 15 and round(0.7 x 12) = 8 (8.4 rounds down).
        let list = patients(21, 12);
        let cohorts = assign_cohorts(&inputs(&list, CenterRole::Development), 0.7, 42);
        let count = |label: bool, cohort: Cohort| {
            list.iter()
                .zip(&cohorts)
                .filter(|((_, l), c)| *l == label && **c == cohort)
                .count()
        };
        assert_eq!(count(false, Cohort::Training), 15);
        assert_eq!(count(true, Cohort::Training), 8);
        assert_eq!(count(false, Cohort::InternalValidation), 6);
        assert_eq!(count(true, Cohort::InternalValidation), 4);
    }

    #[test]
    fn split_does_not_depend_on_input_order() {
        let list = patients(10, 10);
        let forward = assign_cohorts(&inputs(&list, CenterRole::Development), 0.7, 7);
        let reversed_list: Vec<_> = list.iter().rev().cloned().collect();
        let mut reversed = assign_cohorts(&inputs(&reversed_list, CenterRole::Development), 0.7, 7);
        reversed.reverse();
        assert_eq!(forward, reversed);
    }

    #[test]
    fn split_changes_with_seed() {
        let list = patients(10, 10);
        let first = assign_cohorts(&inputs(&list, CenterRole::Development), 0.7, 1);
        let second = assign_cohorts(&inputs(&list, CenterRole::Development), 0.7, 2);
        assert_ne!(first, second);
    }

    #[test]
    fn split_external_center_is_all_external() {
        let list = patients(3, 3);
        let cohorts = assign_cohorts(&inputs(&list, CenterRole::External), 0.7, 42);
        assert!(cohorts.iter().all(|c| *c == Cohort::ExternalValidation));
    }
}
