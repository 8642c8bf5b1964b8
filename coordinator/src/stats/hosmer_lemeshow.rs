//! Hosmer–Lemeshow goodness-of-fit test on groups of predicted probability.
//!
//! Let, for group k with nₖ patients:
//!
//! ```text
//! O1ₖ = Σ y        observed positives      O0ₖ = nₖ − O1ₖ
//! E1ₖ = Σ p        expected positives      E0ₖ = nₖ − E1ₖ
//! H   = Σₖ [(O1ₖ − E1ₖ)² / E1ₖ + (O0ₖ − E0ₖ)² / E0ₖ]
//! ```
//!
//! A term whose expected count is 0 is skipped (an empty group, or a group
//! whose predictions are all exactly 0 or all exactly 1). With g non-empty
//! groups, H is referred to χ² with g − 2 degrees of freedom on the
//! development set. On an external set no parameters were fitted, so there
//! the reference is χ² with g degrees of freedom. Both p-values are reported.
//!
//! Groups are quantile groups of p ([`hosmer_lemeshow`]) or fixed bins
//! shared by several sites ([`hosmer_lemeshow_from_bins`]), both with the
//! binning rule of the calibration module: right-closed bins with the lowest
//! edge included.
//!
//! Sources: D. W. Hosmer and S. Lemeshow (1980), "Goodness of fit tests for
//! the multiple logistic regression model", Communications in Statistics –
//! Theory and Methods 9(10):1043–1069; D. W. Hosmer, S. Lemeshow and
//! R. X. Sturdivant (2013), "Applied Logistic Regression", 3rd ed., Wiley.
//! R's DescTools `HosmerLemeshowTest` groups with `cut(p,
//! unique(quantile(p, 0:g / g)), include.lowest = TRUE)`, the same closure,
//! but drops repeated edges instead of lowering g. The fixture values come
//! from a NumPy 2.4.6 / SciPy 1.17.1 implementation of the rule above in
//! `tests/fixtures/make_validation_fixtures.py`, whose groups are checked
//! against `pandas.cut(right=True, include_lowest=True)`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::StatsError;
use super::calibration::{CalibrationBins, check_predictions};
use super::quantile::equal_count_edges;

/// Default number of Hosmer–Lemeshow groups (deciles of risk).
pub const DEFAULT_GROUPS: usize = 10;

/// Result of the Hosmer–Lemeshow test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HosmerLemeshow {
    /// The bins the statistic was computed from, after any reduction of the
    /// requested number of quantile groups.
    pub bins: CalibrationBins,
    /// Number of non-empty groups g.
    pub groups: usize,
    /// The statistic H.
    pub statistic: f64,
    /// g − 2, the degrees of freedom for the development (training) set.
    pub df_development: usize,
    /// P(χ²(g − 2) ≥ H), or `None` when g < 3.
    pub p_development: Option<f64>,
    /// g, the degrees of freedom for an external validation set.
    pub df_external: usize,
    /// P(χ²(g) ≥ H).
    pub p_external: f64,
}

/// Runs the Hosmer–Lemeshow test on `groups` quantile groups of the
/// predictions.
///
/// The edges are `np.percentile(p, np.linspace(0, 1, g + 1) * 100)` (linear
/// interpolation, Hyndman & Fan type 7). While two edges coincide, because of
/// tied predictions, g is lowered by 1 and the edges recomputed.
///
/// NOTE: interpolated edges can leave a group empty even when all edges are
/// distinct, for example with few distinct predictions. Such a group adds
/// nothing to H and is not counted in g.
///
/// # Errors
///
/// [`StatsError::InvalidParameter`] if `groups` < 1,
/// [`StatsError::LengthMismatch`], [`StatsError::InvalidPrediction`],
/// [`StatsError::Empty`] for no predictions, and
/// [`StatsError::UndefinedStatistic`] when all predictions are equal, so no
/// two distinct edges exist.
pub fn hosmer_lemeshow(
    predictions: &[f64],
    labels: &[bool],
    groups: usize,
) -> Result<HosmerLemeshow, StatsError> {
    if groups == 0 {
        return Err(StatsError::InvalidParameter {
            name: "number of groups",
            value: 0.0,
            expected: "at least 1",
        });
    }
    check_predictions(predictions, labels)?;
    if predictions.is_empty() {
        return Err(StatsError::Empty {
            input: "predictions",
        });
    }

    let mut requested = groups;
    let edges = loop {
        let edges = equal_count_edges(predictions, requested);
        if edges.windows(2).all(|pair| pair[0] < pair[1]) {
            break edges;
        }
        if requested == 1 {
            return Err(StatsError::UndefinedStatistic {
                statistic: "Hosmer–Lemeshow test",
                reason: format!(
                    "all {} predictions equal {}, so no quantile groups exist",
                    predictions.len(),
                    predictions[0]
                ),
            });
        }
        requested -= 1;
    };

    let bins = CalibrationBins::on_edges(&edges, predictions, labels)?;
    Ok(hosmer_lemeshow_from_bins(&bins))
}

/// Runs the Hosmer–Lemeshow test on bins with fixed edges, for example the
/// merged [`CalibrationBins`] of several sites. With edges fixed in advance
/// the statistic is exactly computable from the per-site counts and sums.
pub fn hosmer_lemeshow_from_bins(bins: &CalibrationBins) -> HosmerLemeshow {
    let mut statistic = 0.0;
    let mut groups: usize = 0;
    for bin in 0..bins.counts.len() {
        let count = bins.counts[bin] as f64;
        if bins.counts[bin] == 0 {
            continue;
        }
        groups += 1;
        let expected_positive = bins.sum_predicted[bin];
        let expected_negative = count - expected_positive;
        let observed_positive = bins.positives[bin] as f64;
        let observed_negative = count - observed_positive;
        if expected_positive > 0.0 {
            statistic += (observed_positive - expected_positive).powi(2) / expected_positive;
        }
        if expected_negative > 0.0 {
            statistic += (observed_negative - expected_negative).powi(2) / expected_negative;
        }
    }

    let df_development = groups.saturating_sub(2);
    HosmerLemeshow {
        bins: bins.clone(),
        groups,
        statistic,
        df_development,
        p_development: (groups >= 3).then(|| chi_squared_survival(statistic, df_development)),
        df_external: groups,
        p_external: chi_squared_survival(statistic, groups),
    }
}

/// Returns P(χ²(df) ≥ statistic) for df ≥ 1, and 1 for df = 0.
fn chi_squared_survival(statistic: f64, df: usize) -> f64 {
    match ChiSquared::new(df as f64) {
        Ok(distribution) if df > 0 => distribution.sf(statistic),
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::{labels, section, vector};
    use super::*;

    /// H is a sum of at most 2g closed-form terms.
    const STATISTIC_TOLERANCE: f64 = 1e-12;

    /// statrs 0.19's regularised incomplete gamma against SciPy 1.17.1
    /// `chi2.sf`: measured agreement on the fixture cases is better than
    /// 1e-13 relative.
    const CHI_SQUARED_RELATIVE_TOLERANCE: f64 = 1e-10;

    fn assert_close(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    #[test]
    fn hosmer_lemeshow_matches_reference() {
        let data = section("hosmer_lemeshow");
        for case in data.as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let p = vector(&case["p"]);
            let y = labels(&case["y"]);
            let requested = case["requested_groups"].as_u64().unwrap() as usize;
            let result = hosmer_lemeshow(&p, &y, requested).unwrap();

            assert_eq!(result.bins.edges, vector(&case["edges"]), "{name}: edges");
            let expected_counts: Vec<usize> = case["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|value| value.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(result.bins.counts, expected_counts, "{name}: counts");
            assert_eq!(
                result.groups,
                case["groups"].as_u64().unwrap() as usize,
                "{name}: g"
            );
            assert_close(
                result.statistic,
                case["statistic"].as_f64().unwrap(),
                STATISTIC_TOLERANCE,
                &format!("{name}: H"),
            );
            let p_external = case["p_external"].as_f64().unwrap();
            assert_close(
                result.p_external,
                p_external,
                CHI_SQUARED_RELATIVE_TOLERANCE * p_external,
                &format!("{name}: p with g df"),
            );
            let p_development = case["p_development"].as_f64().unwrap();
            assert_close(
                result.p_development.unwrap(),
                p_development,
                CHI_SQUARED_RELATIVE_TOLERANCE * p_development,
                &format!("{name}: p with g - 2 df"),
            );
        }
    }

    #[test]
    fn hosmer_lemeshow_reduces_groups_on_ties() {
        // Three distinct values: deciles repeat edges until g = 2, where the
        // edges are 0.2, 0.5, 0.8.
        let p = [0.2, 0.2, 0.2, 0.5, 0.8, 0.8, 0.8];
        let y = [false, false, true, true, true, true, false];
        let result = hosmer_lemeshow(&p, &y, 10).unwrap();
        assert_eq!(result.bins.edges, vec![0.2, 0.5, 0.8]);
        assert_eq!(result.bins.counts, vec![4, 3]);
        assert_eq!(result.groups, 2);
        assert_eq!(result.p_development, None);
    }

    #[test]
    fn hosmer_lemeshow_rejects_constant_predictions() {
        let error = hosmer_lemeshow(&[0.3; 5], &[true, false, true, false, false], 10).unwrap_err();
        assert!(
            matches!(error, StatsError::UndefinedStatistic { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn hosmer_lemeshow_skips_zero_expected_cells() {
        // The first bin has p = 0 only: E1 = 0 is skipped, E0 = 2 is kept.
        let bins = CalibrationBins::on_edges(
            &[0.0, 0.1, 1.0],
            &[0.0, 0.0, 0.5, 0.5],
            &[false, false, true, false],
        )
        .unwrap();
        let result = hosmer_lemeshow_from_bins(&bins);
        assert_eq!(result.groups, 2);
        assert_eq!(result.statistic, 0.0);
    }
}
