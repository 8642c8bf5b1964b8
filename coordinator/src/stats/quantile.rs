//! Sample quantiles by linear interpolation (Hyndman & Fan type 7), computed
//! with the same floating-point operations as NumPy 2.4.
//!
//! Bin edges and bootstrap percentiles decide which side of an edge a score
//! falls on, so an edge that differs from NumPy's by one ulp can move a
//! patient to another bin. Each step below therefore repeats NumPy 2.4.6
//! `np.percentile(a, q, method="linear")` operation by operation:
//! `q / 100`, the virtual index `(n − 1) q`, its floor, and NumPy's `_lerp`,
//! which interpolates from the upper neighbour when the weight is ≥ ½.
//!
//! Source: R. J. Hyndman and Y. Fan (1996), "Sample quantiles in statistical
//! packages", The American Statistician 50(4):361–365, definition 7 (R's
//! default `quantile` type).

use super::validate::compare_finite;

/// Returns the `percent`-th percentile of `values` (0 ≤ percent ≤ 100) as
/// `np.percentile(values, percent)` does with its default linear method.
///
/// `values` must be finite and non-empty. They need not be sorted.
pub(crate) fn percentile(values: &[f64], percent: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| compare_finite(*a, *b));
    percentile_of_sorted(&sorted, percent)
}

/// As [`percentile`], for values already sorted in ascending order.
pub(crate) fn percentile_of_sorted(sorted: &[f64], percent: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let quantile = percent / 100.0;
    let last = sorted.len() - 1;
    let virtual_index = last as f64 * quantile;
    if virtual_index >= last as f64 {
        return sorted[last];
    }

    let previous = virtual_index.floor();
    let weight = virtual_index - previous;
    // previous < last here, so previous + 1 is a valid index.
    let lower = sorted[previous as usize];
    let upper = sorted[previous as usize + 1];
    let difference = upper - lower;
    if weight >= 0.5 {
        upper - difference * (1.0 - weight)
    } else {
        lower + difference * weight
    }
}

/// Returns the `groups + 1` percentages `np.linspace(0, 1, groups + 1) * 100`
/// that scikit-learn 1.9.1 `calibration_curve(strategy="quantile")` passes to
/// `np.percentile`: `k · (1 / groups) · 100` for k < groups, then exactly 100.
pub(crate) fn equal_count_percentages(groups: usize) -> Vec<f64> {
    let step = 1.0 / groups as f64;
    (0..=groups)
        .map(|k| {
            let fraction = if k == groups {
                1.0
            } else {
                k as f64 * step + 0.0
            };
            fraction * 100.0
        })
        .collect()
}

/// Returns the edges of `groups` equal-count bins of `values`:
/// `np.percentile(values, np.linspace(0, 1, groups + 1) * 100)`.
///
/// `values` must be finite and non-empty, and `groups` at least 1. Edges can
/// repeat when values are tied.
pub(crate) fn equal_count_edges(values: &[f64], groups: usize) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| compare_finite(*a, *b));
    equal_count_percentages(groups)
        .into_iter()
        .map(|percent| percentile_of_sorted(&sorted, percent))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::{number, section, vector};
    use super::*;

    #[test]
    fn percentile_matches_numpy() {
        let data = section("quantile");
        let values = vector(&data["values"]);
        for case in data["percentiles"].as_array().unwrap() {
            let percent = case["q"].as_f64().unwrap();
            let expected = number(&case["value"]);
            // The same operations as NumPy, so the results are bitwise equal.
            assert_eq!(percentile(&values, percent), expected, "q = {percent}");
        }
    }

    #[test]
    fn equal_count_edges_match_numpy() {
        let data = section("quantile");
        for case in data["edges"].as_array().unwrap() {
            let values = vector(&case["values"]);
            let groups = case["groups"].as_u64().unwrap() as usize;
            assert_eq!(
                equal_count_edges(&values, groups),
                vector(&case["edges"]),
                "groups = {groups}"
            );
        }
    }

    #[test]
    fn percentile_of_single_value() {
        assert_eq!(percentile(&[0.3], 2.5), 0.3);
        assert_eq!(percentile(&[0.3], 100.0), 0.3);
    }

    #[test]
    fn percentile_interpolates() {
        // Virtual index 0.75 · 3 = 2.25 between 3.0 and 10.0.
        assert_eq!(percentile(&[10.0, 1.0, 3.0, 2.0], 75.0), 3.0 + 7.0 * 0.25);
        assert_eq!(percentile(&[10.0, 1.0, 3.0, 2.0], 0.0), 1.0);
    }
}
