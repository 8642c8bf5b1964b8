use super::super::test_fixtures::{labels, section, vector};
use super::*;

/// Closed forms summed in a different order from NumPy.
const SUM_TOLERANCE: f64 = 1e-12;

/// Newton fits stopped by R's rule (relative deviance change below 1e-8);
/// quadratic convergence leaves the coefficients far closer than this.
const RECALIBRATION_TOLERANCE: f64 = 1e-8;

/// statrs 0.19 `erfc` has a relative error of up to 1e-10 against
/// SciPy's normal tail (measured in the roc module's tests).
const NORMAL_TAIL_RELATIVE_TOLERANCE: f64 = 2e-10;

fn assert_close(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{quantity}: got {actual}, expected {expected}"
    );
}

fn fixture() -> (serde_json::Value, Vec<f64>, Vec<bool>) {
    let data = section("calibration");
    let predictions = vector(&data["p"]);
    let outcomes = labels(&data["y"]);
    (data, predictions, outcomes)
}

#[test]
fn brier_score_matches_sklearn() {
    let (data, p, y) = fixture();
    let expected = data["brier"].as_f64().unwrap();
    assert_close(
        brier_score(&p, &y).unwrap(),
        expected,
        SUM_TOLERANCE,
        "brier",
    );
}

#[test]
fn spiegelhalter_matches_formula() {
    let (data, p, y) = fixture();
    let test = spiegelhalter_test(&p, &y).unwrap();
    let expected_z = data["spiegelhalter_z"].as_f64().unwrap();
    let expected_p = data["spiegelhalter_p"].as_f64().unwrap();
    assert_close(test.z, expected_z, SUM_TOLERANCE, "z");
    assert_close(
        test.p_value,
        expected_p,
        NORMAL_TAIL_RELATIVE_TOLERANCE * expected_p,
        "p",
    );
}

#[test]
fn spiegelhalter_rejects_zero_variance() {
    let error = spiegelhalter_test(&[0.5, 0.5, 1.0], &[true, false, true]).unwrap_err();
    assert!(
        matches!(error, StatsError::UndefinedStatistic { .. }),
        "{error:?}"
    );
}

#[test]
fn recalibration_matches_statsmodels_glm() {
    let (data, p, y) = fixture();
    let fit = logistic_recalibration(&p, &y).unwrap();
    assert!(fit.converged);
    assert!(!fit.separation_flag);
    assert_close(
        fit.intercept,
        data["calibration_intercept"].as_f64().unwrap(),
        RECALIBRATION_TOLERANCE,
        "intercept",
    );
    let slope_model = vector(&data["calibration_slope_params"]);
    assert_close(
        fit.slope_model_intercept,
        slope_model[0],
        RECALIBRATION_TOLERANCE,
        "a'",
    );
    assert_close(fit.slope, slope_model[1], RECALIBRATION_TOLERANCE, "slope");
}

#[test]
fn recalibration_of_calibrated_logits_is_identity() {
    // Outcomes drawn from a model give intercept near 0 and slope near 1
    // only in expectation, but an exact logistic fit reproduces itself:
    // predictions equal to the fitted slope model recalibrate to (0, 1).
    let (_, p, y) = fixture();
    let first = logistic_recalibration(&p, &y).unwrap();
    let recalibrated: Vec<f64> = p
        .iter()
        .map(|&value| {
            let logit = (value / (1.0 - value)).ln();
            super::super::irls::logistic(first.slope_model_intercept + first.slope * logit)
        })
        .collect();
    let second = logistic_recalibration(&recalibrated, &y).unwrap();
    assert_close(second.slope, 1.0, 1e-7, "slope");
    assert_close(second.slope_model_intercept, 0.0, 1e-7, "a'");
}

#[test]
fn recalibration_rejects_certain_predictions() {
    let error = logistic_recalibration(&[0.2, 1.0, 0.4], &[false, true, true]).unwrap_err();
    assert!(
        matches!(error, StatsError::InvalidPrediction { index: 1, .. }),
        "{error:?}"
    );
}

#[test]
fn calibration_curve_matches_sklearn() {
    let (data, p, y) = fixture();
    for case in data["curves"].as_array().unwrap() {
        let bins = case["n_bins"].as_u64().unwrap() as usize;
        let (case_p, case_y) = match case.get("p") {
            Some(values) => (vector(values), labels(&case["y"])),
            None => (p.clone(), y.clone()),
        };
        let curve = calibration_curve(&case_p, &case_y, bins).unwrap();
        let observed = vector(&case["prob_true"]);
        let predicted = vector(&case["prob_pred"]);
        assert_eq!(curve.len(), observed.len(), "{bins} bins: number of points");
        for (index, point) in curve.iter().enumerate() {
            let label = format!("{bins} bins, point {index}");
            assert_close(
                point.observed_fraction,
                observed[index],
                SUM_TOLERANCE,
                &label,
            );
            assert_close(
                point.mean_predicted,
                predicted[index],
                SUM_TOLERANCE,
                &label,
            );
        }
    }
}

#[test]
fn calibration_bins_merge_equals_pooled() {
    let (_, p, y) = fixture();
    let edges: Vec<f64> = (0..=10).map(|k| k as f64 / 10.0).collect();
    let pooled = CalibrationBins::on_edges(&edges, &p, &y).unwrap();
    let split = p.len() / 3;
    let mut merged = CalibrationBins::on_edges(&edges, &p[..split], &y[..split]).unwrap();
    merged
        .merge(&CalibrationBins::on_edges(&edges, &p[split..], &y[split..]).unwrap())
        .unwrap();
    assert_eq!(merged.counts, pooled.counts);
    assert_eq!(merged.positives, pooled.positives);
    for (a, b) in merged.sum_predicted.iter().zip(&pooled.sum_predicted) {
        assert_close(*a, *b, SUM_TOLERANCE, "sum_predicted");
    }
}

#[test]
fn calibration_bins_are_right_closed() {
    // Edge 0.5 belongs to the lower bin, 0.0 to the first bin.
    let bins = CalibrationBins::on_edges(
        &[0.0, 0.5, 1.0],
        &[0.0, 0.5, 0.50001, 1.0],
        &[false, true, false, true],
    )
    .unwrap();
    assert_eq!(bins.counts, vec![2, 2]);
    assert_eq!(bins.positives, vec![1, 1]);
}

#[test]
fn calibration_bins_reject_bad_edges() {
    for edges in [
        vec![0.5],
        vec![0.0, f64::NAN, 1.0],
        vec![0.0, 0.6, 0.4, 1.0],
    ] {
        let error = CalibrationBins::on_edges(&edges, &[0.1], &[true]).unwrap_err();
        assert!(
            matches!(error, StatsError::InvalidParameter { .. }),
            "{edges:?}"
        );
    }
    let mut left = CalibrationBins::on_edges(&[0.0, 1.0], &[0.1], &[true]).unwrap();
    let right = CalibrationBins::on_edges(&[0.0, 0.5, 1.0], &[0.1], &[true]).unwrap();
    assert!(matches!(
        left.merge(&right).unwrap_err(),
        StatsError::AggregateMismatch { .. }
    ));
}

#[test]
fn predictions_outside_unit_interval_are_rejected() {
    let error = brier_score(&[0.2, f64::NAN], &[true, false]).unwrap_err();
    assert!(
        matches!(error, StatsError::InvalidPrediction { index: 1, .. }),
        "{error:?}"
    );
    let error = brier_score(&[1.2], &[true]).unwrap_err();
    assert!(
        matches!(error, StatsError::InvalidPrediction { index: 0, .. }),
        "{error:?}"
    );
}

#[test]
fn default_bin_count_follows_sample_size() {
    assert_eq!(default_bin_count(49), 5);
    assert_eq!(default_bin_count(50), 10);
}
