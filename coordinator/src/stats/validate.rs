//! Input checks shared by the statistics functions.

use std::cmp::Ordering;

use ndarray::ArrayView2;

use super::StatsError;

/// Rejects the first NaN or infinity in `values`, naming `input` and the index.
pub(crate) fn check_finite(input: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|value| !value.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            input,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Rejects the first NaN or infinity in `matrix`, naming `input`, the row and
/// the column.
pub(crate) fn check_finite_matrix(
    input: &'static str,
    matrix: ArrayView2<f64>,
) -> Result<(), StatsError> {
    for ((row, column), &value) in matrix.indexed_iter() {
        if !value.is_finite() {
            return Err(StatsError::NonFiniteCell {
                input,
                row,
                column,
                value,
            });
        }
    }
    Ok(())
}

/// Rejects an empty slice.
pub(crate) fn check_non_empty<T>(input: &'static str, values: &[T]) -> Result<(), StatsError> {
    if values.is_empty() {
        return Err(StatsError::Empty { input });
    }
    Ok(())
}

/// Rejects two inputs of different lengths.
pub(crate) fn check_same_length(
    left_name: &'static str,
    left: usize,
    right_name: &'static str,
    right: usize,
) -> Result<(), StatsError> {
    if left != right {
        return Err(StatsError::LengthMismatch {
            left_name,
            left,
            right_name,
            right,
        });
    }
    Ok(())
}

/// Counts the true and false labels, rejecting empty or single-class input.
pub(crate) fn count_classes(labels: &[bool]) -> Result<(usize, usize), StatsError> {
    check_non_empty("labels", labels)?;
    let positives = labels.iter().filter(|&&label| label).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(StatsError::SingleClass {
            class: positives > 0,
            count: labels.len(),
        });
    }
    Ok((positives, negatives))
}

/// Orders two finite numbers.
///
/// Unlike `f64::total_cmp`, this treats -0.0 and 0.0 as equal, as NumPy and R
/// do, so they share a mid-rank. Callers reject NaN first, and a NaN that slips
/// through compares equal instead of panicking.
pub(crate) fn compare_finite(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}
