//! Cross-validation of a selection chain on training patients: stratified
//! fold partitions that depend on the patients, not on the table's row
//! order, and out-of-fold radscores with the whole chain refitted in each
//! fold.

use sha2::{Digest, Sha256};

use super::chain::{ChainSpec, fit_chain_on, sort_by_patient_key};
use crate::config::ModelConfig;
use crate::split::Cohort;
use crate::stats;
use crate::table::StudyTable;

/// One stratified partition of some training patients into folds.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Number of folds.
    pub folds: usize,
    /// Fold of each table patient, or `None` for a patient outside the
    /// partitioned set, who is never held out.
    pub fold_of: Vec<Option<usize>>,
}

/// Out-of-fold radscores of one chain over one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfFold {
    /// Log-odds of each table patient from the chain fitted without the
    /// patient's fold, or `None` for a patient outside the partition or
    /// without the chain's features.
    pub log_odds: Vec<Option<f64>>,
    /// Fold fits whose LASSO failed and kept the Mann-Whitney selection.
    pub lasso_failures: usize,
}

/// Derives the seed of one use of cross-validation (`purpose`, such as
/// "best_region") from the study seed: the first 8 bytes of
/// SHA-256(seed as 8 little-endian bytes ‖ purpose), little-endian. Each
/// purpose gets its own partitions, and none depends on the row order.
pub fn derive_seed(seed: u64, purpose: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(purpose.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// Partitions `patients` (table rows of training patients) into
/// `requested_folds` stratified folds, or fewer when the smaller class has
/// fewer patients, with partition number `repeat` of `seed`.
///
/// The patients are ordered by (center, pseudonym) before
/// [`stats::stratified_fold_ids`] deals them, so a patient's fold depends on
/// the seed, the repeat and the set of patients, never on the row order.
pub fn stratified_partition(
    table: &StudyTable,
    patients: &[usize],
    requested_folds: usize,
    seed: u64,
    repeat: usize,
) -> Result<Partition, String> {
    let mut ordered = patients.to_vec();
    sort_by_patient_key(table, &mut ordered);
    let labels: Vec<bool> = ordered.iter().map(|&p| table.patients[p].label).collect();
    let n_positive = labels.iter().filter(|&&y| y).count();
    let smaller_class = n_positive.min(labels.len() - n_positive);
    if smaller_class < 2 {
        return Err(format!(
            "cross-validation needs at least 2 training patients per class, but {} are negative and {n_positive} positive",
            labels.len() - n_positive
        ));
    }
    let folds = requested_folds.min(smaller_class);
    let ids = stats::stratified_fold_ids(&labels, folds, seed, repeat)
        .map_err(|e| format!("fold assignment failed: {e}"))?;

    let mut fold_of = vec![None; table.patients.len()];
    for (&patient, &fold) in ordered.iter().zip(&ids) {
        fold_of[patient] = Some(fold);
    }
    Ok(Partition { folds, fold_of })
}

/// Fits `spec` once per fold of `partition` on the training cohort minus
/// that fold, and scores the fold's patients with it.
///
/// Patients outside the partition stay in every fold's training set if
/// they are in the training cohort. Validation patients are never fitted
/// on.
pub fn out_of_fold_log_odds(
    table: &StudyTable,
    spec: &ChainSpec,
    config: &ModelConfig,
    seed: u64,
    partition: &Partition,
) -> Result<OutOfFold, String> {
    let mut log_odds = vec![None; table.patients.len()];
    let mut lasso_failures = 0;
    for fold in 0..partition.folds {
        let training: Vec<bool> = table
            .patients
            .iter()
            .zip(&partition.fold_of)
            .map(|(patient, &of)| patient.cohort == Cohort::Training && of != Some(fold))
            .collect();
        let chain = fit_chain_on(table, spec, config, seed, &training)
            .map_err(|reason| format!("fold {} of {}: {reason}", fold + 1, partition.folds))?;
        if chain
            .model
            .lasso
            .as_ref()
            .is_some_and(|l| l.failure.is_some())
        {
            lasso_failures += 1;
        }
        for (row, &patient) in chain.patients.iter().enumerate() {
            if partition.fold_of[patient] == Some(fold) {
                log_odds[patient] = Some(chain.log_odds[row]);
            }
        }
    }
    Ok(OutOfFold {
        log_odds,
        lasso_failures,
    })
}

/// Applies `f` to every item on up to `std::thread::available_parallelism`
/// threads and returns the results in item order.
pub fn map_in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    // Thread t takes items t, t + threads, t + 2·threads, …
    let f = &f;
    let mut per_thread: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..items.len())
                        .step_by(threads)
                        .map(|i| (i, f(&items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let mut indexed: Vec<(usize, R)> = per_thread.drain(..).flatten().collect();
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::PatientRecord;

    fn patients(n: usize) -> StudyTable {
        StudyTable {
            patients: (0..n)
                .map(|i| PatientRecord {
                    center: "A".into(),
                    pseudonym: format!("A-{i:02}"),
                    label: i % 3 == 0,
                    cohort: Cohort::Training,
                })
                .collect(),
            columns: Vec::new(),
        }
    }

    #[test]
    fn partition_ignores_row_order() {
        let table = patients(20);
        let rows: Vec<usize> = (0..20).collect();
        let first = stratified_partition(&table, &rows, 5, 42, 0).expect("two classes");

        let mut reversed = table.clone();
        reversed.patients.reverse();
        let second = stratified_partition(&reversed, &rows, 5, 42, 0).expect("two classes");
        for row in 0..20 {
            // Row `row` of the reversed table is row 19 - row of the first.
            assert_eq!(
                first.fold_of[row],
                second.fold_of[19 - row],
                "{}",
                table.patients[row].pseudonym
            );
        }
    }

    #[test]
    fn partition_caps_folds_at_smaller_class() {
        // 20 patients with i % 3 == 0 positive: 7 positives, 13 negatives.
        let table = patients(20);
        let rows: Vec<usize> = (0..20).collect();
        let partition = stratified_partition(&table, &rows, 10, 1, 0).expect("two classes");
        assert_eq!(partition.folds, 7);
        for fold in 0..7 {
            let positives = (0..20)
                .filter(|&p| partition.fold_of[p] == Some(fold) && table.patients[p].label)
                .count();
            assert_eq!(positives, 1, "fold {fold}");
        }
    }

    #[test]
    fn partition_rejects_single_positive() {
        let table = patients(20);
        let error = stratified_partition(&table, &[0, 1, 2], 10, 1, 0).unwrap_err();
        assert!(error.contains("at least 2"), "{error}");
    }

    #[test]
    fn map_in_parallel_keeps_item_order() {
        let items: Vec<usize> = (0..17).collect();
        let squares = map_in_parallel(&items, |&i| i * i);
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
    }

    #[test]
    fn derive_seed_differs_per_purpose() {
        assert_ne!(derive_seed(42, "best_region"), derive_seed(42, "stacking"));
        assert_eq!(derive_seed(42, "stacking"), derive_seed(42, "stacking"));
    }
}
