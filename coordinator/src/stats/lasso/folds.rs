//! Seeded, stratified fold assignment for cross-validation.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use crate::stats::StatsError;
use crate::stats::validate::count_classes;

/// Assigns each row to one of `folds` folds, stratified on `y`, for fold
/// partition number `repeat` of `seed`.
///
/// The assignment depends only on `seed`, `repeat`, `folds` and the labels
/// in row order:
///
/// 1. The generator is xoshiro256++ seeded with `seed` through SplitMix64
///    (`Xoshiro256PlusPlus::seed_from_u64`), advanced by `repeat` calls of
///    its `jump` function, so each repeat draws from its own stream.
/// 2. The false rows, then the true rows, each in row order, are shuffled by
///    Fisher–Yates (for i from the last position down to 1, swap i with a
///    uniform j ≤ i, drawn by Lemire's multiply-and-reject method from
///    64-bit outputs).
/// 3. The shuffled false rows followed by the shuffled true rows are dealt
///    to folds 0, 1, …, folds − 1, 0, 1, … in turn.
///
/// Every fold therefore contains ⌊n_c / folds⌋ or ⌈n_c / folds⌉ rows of each
/// class c, and fold sizes differ by at most one. The partition is not the
/// one scikit-learn's `StratifiedKFold` or glmnet's random `foldid` would
/// draw. Pass the returned ids to [`lasso_cv_with_folds`](super::lasso_cv_with_folds)
/// or to another program to reproduce a run.
///
/// # Errors
///
/// - [`StatsError::Empty`] or [`StatsError::SingleClass`] if `y` is empty or
///   has one class.
/// - [`StatsError::InvalidParameter`] named "folds" unless
///   `2 ≤ folds ≤ y.len()`.
pub fn stratified_fold_ids(
    y: &[bool],
    folds: usize,
    seed: u64,
    repeat: usize,
) -> Result<Vec<usize>, StatsError> {
    count_classes(y)?;
    if folds < 2 || folds > y.len() {
        return Err(StatsError::InvalidParameter {
            name: "folds",
            value: folds as f64,
            expected: "an integer from 2 to the number of rows",
        });
    }

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..repeat {
        rng.jump();
    }

    let mut fold_ids = vec![0; y.len()];
    let mut position = 0;
    for class in [false, true] {
        let mut rows: Vec<usize> = (0..y.len()).filter(|&row| y[row] == class).collect();
        shuffle(&mut rows, &mut rng);
        for row in rows {
            fold_ids[row] = position % folds;
            position += 1;
        }
    }
    Ok(fold_ids)
}

/// Checks user-supplied fold ids against `rows` rows and returns the number
/// of folds, `max id + 1`.
pub(super) fn check_fold_ids(
    fold_ids: &[usize],
    rows: usize,
    repeat: usize,
) -> Result<usize, StatsError> {
    if fold_ids.len() != rows {
        return Err(StatsError::LengthMismatch {
            left_name: "fold_ids",
            left: fold_ids.len(),
            right_name: "y",
            right: rows,
        });
    }
    let folds = fold_ids.iter().max().map_or(0, |&max| max + 1);
    if folds < 2 {
        return Err(StatsError::InvalidParameter {
            name: "folds",
            value: folds as f64,
            expected: "at least 2 distinct fold ids, numbered from 0",
        });
    }
    let mut sizes = vec![0usize; folds];
    for &fold in fold_ids {
        sizes[fold] += 1;
    }
    if let Some(fold) = sizes.iter().position(|&size| size == 0) {
        return Err(StatsError::EmptyFold {
            repeat,
            fold,
            folds,
        });
    }
    Ok(folds)
}

/// Fisher–Yates shuffle from the last position down.
fn shuffle(values: &mut [usize], rng: &mut Xoshiro256PlusPlus) {
    for last in (1..values.len()).rev() {
        let pick = uniform_below(rng, last as u64 + 1) as usize;
        values.swap(last, pick);
    }
}

/// Uniform integer in `0..bound` (bound ≥ 1) by D. Lemire (2019), "Fast
/// random integer generation in an interval", ACM TOMACS 29(1): take the high
/// 64 bits of `x · bound` and reject the few x whose low 64 bits fall below
/// `2^64 mod bound`, which would bias the result.
fn uniform_below(rng: &mut Xoshiro256PlusPlus, bound: u64) -> u64 {
    let rejection_limit = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(bound);
        if (product as u64) >= rejection_limit {
            return (product >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<bool> {
        // 23 true, 33 false, interleaved irregularly.
        (0..56)
            .map(|row| row % 5 == 0 || row % 7 == 3 || row % 11 == 4)
            .collect()
    }

    #[test]
    fn folds_are_stratified_and_balanced() {
        let y = labels();
        let positives = y.iter().filter(|&&label| label).count();
        let negatives = y.len() - positives;
        let ids = stratified_fold_ids(&y, 10, 42, 0).unwrap();
        for fold in 0..10 {
            let members: Vec<usize> = (0..56).filter(|&row| ids[row] == fold).collect();
            let fold_positives = members.iter().filter(|&&row| y[row]).count();
            let fold_negatives = members.len() - fold_positives;
            assert!(
                fold_positives == positives / 10 || fold_positives == positives.div_ceil(10),
                "fold {fold}: {fold_positives} positives"
            );
            assert!(
                fold_negatives == negatives / 10 || fold_negatives == negatives.div_ceil(10),
                "fold {fold}: {fold_negatives} negatives"
            );
            assert!(
                members.len() == 5 || members.len() == 6,
                "fold {fold}: {} rows",
                members.len()
            );
        }
    }

    #[test]
    fn folds_depend_only_on_seed_and_repeat() {
        let y = labels();
        let first = stratified_fold_ids(&y, 10, 42, 0).unwrap();
        assert_eq!(first, stratified_fold_ids(&y, 10, 42, 0).unwrap());
        assert_ne!(first, stratified_fold_ids(&y, 10, 43, 0).unwrap());
        assert_ne!(first, stratified_fold_ids(&y, 10, 42, 1).unwrap());
    }

    #[test]
    fn folds_are_pinned_for_seed_42() {
        // Pinned so that a change of generator, shuffle or dealing order,
        // which would silently change every CV result, fails here.
        let y = [
            true, false, true, false, false, true, false, false, true, false,
        ];
        let ids = stratified_fold_ids(&y, 3, 42, 0).unwrap();
        assert_eq!(ids, PINNED_IDS);
    }

    const PINNED_IDS: [usize; 10] = [2, 0, 1, 1, 2, 0, 0, 2, 0, 1];

    #[test]
    fn fold_ids_are_checked() {
        assert_eq!(check_fold_ids(&[0, 1, 0, 1], 4, 0).unwrap(), 2);
        assert!(matches!(
            check_fold_ids(&[0, 1, 0], 4, 0).unwrap_err(),
            StatsError::LengthMismatch {
                left: 3,
                right: 4,
                ..
            }
        ));
        assert!(matches!(
            check_fold_ids(&[0, 0, 0, 0], 4, 0).unwrap_err(),
            StatsError::InvalidParameter { name: "folds", .. }
        ));
        assert_eq!(
            check_fold_ids(&[0, 2, 0, 2], 4, 1).unwrap_err(),
            StatsError::EmptyFold {
                repeat: 1,
                fold: 1,
                folds: 3
            }
        );
    }

    #[test]
    fn stratified_fold_ids_rejects_bad_fold_count() {
        let y = [true, false, true];
        for folds in [0, 1, 4] {
            assert!(matches!(
                stratified_fold_ids(&y, folds, 1, 0).unwrap_err(),
                StatsError::InvalidParameter { name: "folds", .. }
            ));
        }
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[uniform_below(&mut rng, 3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&count| (900..1100).contains(&count)),
            "{counts:?}"
        );
        assert_eq!(uniform_below(&mut rng, 1), 0);
    }
}
