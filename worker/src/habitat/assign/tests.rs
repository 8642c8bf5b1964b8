use ndarray::array;

use super::*;

fn columns() -> Vec<String> {
    vec!["intensity".into(), "entropy".into()]
}

fn model() -> HabitatModel {
    HabitatModel {
        space: "PET".into(),
        columns: columns(),
        mean: vec![0.5, 0.5],
        scale: vec![0.25, 0.5],
        // Centroid 0 at z = (-1, 0), centroid 1 at z = (1, 0).
        centroids: vec![-1.0, 0.0, 1.0, 0.0],
        names: vec!["inner".into(), "marginal".into()],
        ..HabitatModel::default()
    }
}

#[test]
fn assign_nearest_centroid_after_standardising() {
    let valid = ValidHabitatModel::from_proto(0, &model(), &columns()).expect("valid");
    // x = 0.3 gives z = -0.8 (habitat 0); x = 0.7 gives z = 0.8
    // (habitat 1); x = 0.5 is equidistant, so the lower index wins.
    let descriptors = array![[0.3, 0.9], [0.7, 0.1], [0.5, 0.5]];
    assert_eq!(valid.assign(descriptors.view()), Ok(vec![0, 1, 0]));
}

#[test]
fn assign_skips_nan_columns() {
    let valid = ValidHabitatModel::from_proto(0, &model(), &columns()).expect("valid");
    let descriptors = array![[0.8, f64::NAN]];
    assert_eq!(valid.assign(descriptors.view()), Ok(vec![1]));
}

#[test]
fn habitat_model_errors_name_field() {
    let cases: Vec<(HabitatModel, &str)> = vec![
        (
            HabitatModel {
                scale: vec![0.25, 0.0],
                ..model()
            },
            "models[0].scale",
        ),
        (
            HabitatModel {
                mean: vec![0.5],
                ..model()
            },
            "models[0].mean",
        ),
        (
            HabitatModel {
                centroids: vec![0.0; 3],
                ..model()
            },
            "models[0].centroids",
        ),
        (
            HabitatModel {
                centroids: vec![f64::NAN, 0.0, 1.0, 0.0],
                ..model()
            },
            "models[0].centroids",
        ),
        (
            HabitatModel {
                names: vec!["inner".into(), "inner".into()],
                ..model()
            },
            "models[0].names",
        ),
        (
            HabitatModel {
                names: vec!["inner".into(), "whole".into()],
                ..model()
            },
            "models[0].names",
        ),
        (
            HabitatModel {
                columns: vec!["entropy".into(), "intensity".into()],
                ..model()
            },
            "models[0].columns",
        ),
    ];
    for (case, field) in cases {
        let error = ValidHabitatModel::from_proto(0, &case, &columns()).unwrap_err();
        assert_eq!(error.field, field, "{error}");
    }
}

/// Two components in the standardised space that disagree with the
/// nearest-mean rule: component 0 at (0, 0) with variance 9 on both
/// axes, component 1 at (2, 0) with variance 0.01, equal weights.
fn disagreeing_mixture() -> HabitatModel {
    HabitatModel {
        mean: vec![0.0, 0.0],
        scale: vec![1.0, 1.0],
        centroids: vec![0.0, 0.0, 2.0, 0.0],
        covariance_type: FULL_COVARIANCE.into(),
        weights: vec![0.5, 0.5],
        covariances: vec![9.0, 0.0, 0.0, 9.0, 0.01, 0.0, 0.0, 0.01],
        ..model()
    }
}

#[test]
fn posterior_differs_from_nearest_mean() {
    // z = (1.5, 0) is 0.5 from mean 1 and 1.5 from mean 0, so the
    // nearest mean is 1. Its log densities, without the common
    // −ln 2π and ln 0.5 terms, are −½ (ln 81 + 2.25 / 9) = −2.32 for
    // component 0 and −½ (ln 1e-4 + 0.25 / 0.01) = −7.89 for component
    // 1, so the posterior picks 0.
    let descriptors = array![[1.5, 0.0]];
    let mixture = ValidHabitatModel::from_proto(0, &disagreeing_mixture(), &columns())
        .expect("valid mixture");
    assert_eq!(mixture.assign(descriptors.view()), Ok(vec![0]));

    let means_only = HabitatModel {
        covariance_type: String::new(),
        weights: Vec::new(),
        covariances: Vec::new(),
        ..disagreeing_mixture()
    };
    let nearest = ValidHabitatModel::from_proto(0, &means_only, &columns()).expect("valid");
    assert_eq!(nearest.assign(descriptors.view()), Ok(vec![1]));
}

#[test]
fn posterior_equals_coordinator_labels() {
    // Three blobs of 30 points with unequal spreads, fitted by the
    // coordinator's mixture code. Given the fitted parameters through
    // the contract, the worker must return the fit's own labels (the
    // same argmax on the same numbers). Scales are powers of two and
    // means 0, so standardising the descriptors returns the fitted
    // values bit for bit.
    let centres = [(0.0, 0.0, 0.3), (2.0, 1.0, 0.8), (-1.0, 3.0, 0.1)];
    let z = Array2::from_shape_fn((90, 2), |(row, column)| {
        let (x, y, spread) = centres[row % 3];
        let angle = row as f64 * 2.399;
        let radius = spread * ((row / 3) as f64 / 30.0).sqrt();
        match column {
            0 => x + radius * angle.cos(),
            _ => y + radius * angle.sin(),
        }
    });
    let fit = radstudy_cluster::gmm::gmm(z.view(), &radstudy_cluster::gmm::GmmParams::new(3), 7)
        .expect("fit");

    let scale = [0.5, 2.0];
    let descriptors =
        Array2::from_shape_fn(z.dim(), |(row, column)| z[[row, column]] * scale[column]);
    let model = HabitatModel {
        mean: vec![0.0, 0.0],
        scale: scale.to_vec(),
        centroids: fit.mixture.means.iter().copied().collect(),
        names: vec!["inner".into(), "mid_2".into(), "marginal".into()],
        covariance_type: FULL_COVARIANCE.into(),
        weights: fit.mixture.weights.to_vec(),
        covariances: fit.mixture.covariances.iter().copied().collect(),
        ..model()
    };
    let valid = ValidHabitatModel::from_proto(0, &model, &columns()).expect("valid mixture");
    assert_eq!(valid.assign(descriptors.view()), Ok(fit.labels.clone()));

    // The three blobs are separated, so the labels form three groups
    // of 30: the check above compares real partitions.
    let mut counts = [0; 3];
    for &label in &fit.labels {
        counts[label] += 1;
    }
    assert_eq!(counts, [30, 30, 30]);
}

#[test]
fn posterior_marginalises_nan_columns() {
    // With column 1 missing, the marginal mixture is 1-D: N(0, 9) and
    // N(2, 0.01). At z = 1.5 the same arithmetic as in
    // `posterior_differs_from_nearest_mean` picks component 0, and at
    // z = 2.0 component 1 (log density −½ ln 0.01 = 2.30 against
    // −½ (ln 9 + 4 / 9) = −1.32).
    let valid = ValidHabitatModel::from_proto(0, &disagreeing_mixture(), &columns())
        .expect("valid mixture");
    let descriptors = array![[1.5, f64::NAN], [2.0, f64::NAN], [f64::NAN, f64::NAN]];
    // An all-NaN row keeps only the prior, a tie that goes to 0.
    assert_eq!(valid.assign(descriptors.view()), Ok(vec![0, 1, 0]));
}

#[test]
fn diagonal_mixture_equals_full() {
    let diagonal = HabitatModel {
        covariance_type: DIAGONAL_COVARIANCE.into(),
        covariances: vec![9.0, 9.0, 0.01, 0.01],
        ..disagreeing_mixture()
    };
    let full = ValidHabitatModel::from_proto(0, &disagreeing_mixture(), &columns()).expect("valid");
    let diagonal = ValidHabitatModel::from_proto(0, &diagonal, &columns()).expect("valid");
    assert_eq!(full, diagonal);
}

#[test]
fn mixture_errors_name_field() {
    let cases: Vec<(HabitatModel, &str, &str)> = vec![
        (
            HabitatModel {
                covariance_type: "spherical".into(),
                ..disagreeing_mixture()
            },
            "models[0].covariance_type",
            "not supported",
        ),
        (
            HabitatModel {
                covariance_type: String::new(),
                ..disagreeing_mixture()
            },
            "models[0].covariance_type",
            "weights or covariances are set",
        ),
        (
            HabitatModel {
                weights: vec![0.5],
                ..disagreeing_mixture()
            },
            "models[0].weights",
            "one per habitat",
        ),
        (
            HabitatModel {
                weights: vec![0.5, 0.0],
                ..disagreeing_mixture()
            },
            "models[0].weights",
            "> 0",
        ),
        (
            HabitatModel {
                covariances: vec![9.0; 7],
                ..disagreeing_mixture()
            },
            "models[0].covariances",
            "2 habitats × 4",
        ),
        (
            HabitatModel {
                covariances: vec![9.0, 1.0, 0.0, 9.0, 0.01, 0.0, 0.0, 0.01],
                ..disagreeing_mixture()
            },
            "models[0].covariances",
            "not symmetric",
        ),
        (
            // Habitat 1's matrix has determinant 0.01 − 1 < 0.
            HabitatModel {
                covariances: vec![9.0, 0.0, 0.0, 9.0, 0.01, 1.0, 1.0, 0.01],
                ..disagreeing_mixture()
            },
            "models[0].covariances",
            "habitat 1 is not positive definite",
        ),
    ];
    for (case, field, reason) in cases {
        let error = ValidHabitatModel::from_proto(0, &case, &columns()).unwrap_err();
        assert_eq!(error.field, field, "{error}");
        assert!(error.reason.contains(reason), "{error}");
    }
}
