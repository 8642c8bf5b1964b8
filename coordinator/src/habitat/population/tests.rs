use super::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Synthetic training sets: each patient has 12 supervoxels drawn
/// around three descriptor centres, deeper supervoxels with higher
/// entropy, so the pooled rows have three clear clusters.
pub(crate) fn synthetic_sets(patients: usize, seed: u64) -> Vec<SupervoxelSet> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let centres = [[0.2, 0.8], [0.5, 0.5], [0.8, 0.1]];
    let depths = [0.8, 0.5, 0.15];
    (0..patients)
        .map(|p| {
            let rows = 12;
            let mut descriptors = Array2::zeros((rows, 2));
            let mut voxel_counts = Vec::new();
            let mut depth_sums = Vec::new();
            let mut entropy_sums = Vec::new();
            for r in 0..rows {
                let c = r % 3;
                descriptors[[r, 0]] = centres[c][0] + rng.gen_range(-0.05..0.05);
                descriptors[[r, 1]] = centres[c][1] + rng.gen_range(-0.05..0.05);
                let count = rng.gen_range(20..60u32);
                voxel_counts.push(count);
                depth_sums.push(f64::from(count) * (depths[c] + rng.gen_range(-0.05..0.05)));
                entropy_sums.push(f64::from(count) * descriptors[[r, 1]]);
            }
            SupervoxelSet {
                center: "A".into(),
                pseudonym: format!("p{p:03}"),
                space: "MR_T1".into(),
                descriptors,
                voxel_counts,
                depth_sums,
                entropy_sums,
            }
        })
        .collect()
}

#[test]
fn population_chooses_three_clusters_by_ch() {
    let config = HabitatConfig::default();
    let fit = fit_population("MR_T1", synthetic_sets(10, 1), &config, 42).expect("fit");
    assert_eq!(fit.k, 3);
    assert_eq!(fit.candidates.len(), 9);
    assert!(fit.candidates.iter().all(|c| c.value.is_some()));
    // The chosen candidate has the maximum index.
    let best = fit
        .candidates
        .iter()
        .filter_map(|c| c.value)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(fit.candidates[1].value, Some(best));
}

#[test]
fn population_silhouette_and_bic_choose_three() {
    let sets = synthetic_sets(10, 2);
    let silhouette = HabitatConfig {
        k: KChoice::Criterion(KCriterion::Silhouette),
        ..HabitatConfig::default()
    };
    assert_eq!(
        fit_population("MR_T1", sets.clone(), &silhouette, 42)
            .expect("fit")
            .k,
        3
    );
    let bic = HabitatConfig {
        k: KChoice::Criterion(KCriterion::Bic),
        method: ClusterMethod::Gmm,
        n_init: 2,
        k_max: 5,
        ..HabitatConfig::default()
    };
    let fit = fit_population("MR_T1", sets, &bic, 42).expect("fit");
    assert_eq!(fit.k, 3);
    assert_eq!(fit.criterion, Some(KCriterion::Bic));
}

#[test]
fn population_gmm_model_carries_mixture() {
    let config = HabitatConfig {
        k: KChoice::Fixed(3),
        method: ClusterMethod::Gmm,
        n_init: 2,
        ..HabitatConfig::default()
    };
    let fit = fit_population("MR_T1", synthetic_sets(10, 2), &config, 42).expect("fit");
    let mixture = fit.mixture.clone().expect("a gmm fit keeps its mixture");
    // The training assignments are the mixture's own posterior labels.
    let standardised = Array2::from_shape_fn((fit.assignments.len(), 2), |(row, column)| {
        let (set, index) = locate(&fit.sets, row);
        (fit.sets[set].descriptors[[index, column]] - fit.mean[column]) / fit.scale[column]
    });
    assert_eq!(
        radstudy_cluster::gmm::predict(standardised.view(), &mixture).expect("valid"),
        fit.assignments
    );

    let columns = vec!["intensity".to_string(), "entropy".to_string()];
    let model = super::super::SpaceModel::new(&fit, columns, &config);
    let message = model.to_proto();
    assert_eq!(message.covariance_type, "full");
    // Each habitat's weight and covariance follow its centroid into
    // name order.
    for (position, habitat) in model.naming.habitats.iter().enumerate() {
        assert_eq!(message.weights[position], mixture.weights[habitat.cluster]);
        let covariance: Vec<f64> = mixture
            .covariances
            .index_axis(Axis(0), habitat.cluster)
            .iter()
            .copied()
            .collect();
        assert_eq!(
            message.covariances[position * 4..(position + 1) * 4],
            covariance[..]
        );
        assert_eq!(
            message.centroids[position * 2..(position + 1) * 2],
            fit.centroids.row(habitat.cluster).to_vec()[..]
        );
    }
}

/// Returns the set and row within it of pooled row `row`.
fn locate(sets: &[SupervoxelSet], mut row: usize) -> (usize, usize) {
    for (index, set) in sets.iter().enumerate() {
        if row < set.descriptors.nrows() {
            return (index, row);
        }
        row -= set.descriptors.nrows();
    }
    panic!("row {row} is past the pooled rows");
}

#[test]
fn population_zscore_uses_population_sd() {
    // Column [1, 2, 3, 4]: mean 2.5, population variance 1.25.
    let rows = Array2::from_shape_vec((4, 2), vec![1.0, 7.0, 2.0, 7.0, 3.0, 7.0, 4.0, 7.0])
        .expect("shape");
    let (mean, scale) = zscore_parameters(rows.view());
    assert_eq!(mean, vec![2.5, 7.0]);
    assert_eq!(scale, vec![1.25f64.sqrt(), 1.0]);
}

#[test]
fn population_truncates_candidates_to_rows() {
    // Two patients with 2 supervoxels each: N = 4, so K ≤ 3.
    let mut sets = synthetic_sets(2, 3);
    for set in &mut sets {
        set.descriptors = set.descriptors.slice(ndarray::s![0..2, ..]).to_owned();
        set.voxel_counts.truncate(2);
        set.depth_sums.truncate(2);
        set.entropy_sums.truncate(2);
    }
    let fit = fit_population("MR_T1", sets, &HabitatConfig::default(), 42).expect("fit");
    assert!(fit.k <= 3);
    let skipped: Vec<usize> = fit
        .candidates
        .iter()
        .filter(|c| c.skipped.is_some())
        .map(|c| c.k)
        .collect();
    assert_eq!(skipped, (4..=10).collect::<Vec<_>>());
}

#[test]
fn population_without_rows_is_an_error() {
    let error = fit_population("PET", Vec::new(), &HabitatConfig::default(), 42).unwrap_err();
    assert!(matches!(error, PopulationError::NoRows { .. }), "{error}");
}

#[test]
fn population_identical_for_any_center_split_and_order() {
    let config = HabitatConfig::default();
    let sets = synthetic_sets(12, 4);
    let pooled = fit_population("MR_T1", sets.clone(), &config, 42).expect("fit");

    // The same sets split over three centers and in reverse order.
    let mut split = sets.clone();
    split.reverse();
    for (index, set) in split.iter_mut().enumerate() {
        set.center = ["A", "B", "C"][index % 3].to_string();
    }
    let regrouped = fit_population("MR_T1", split, &config, 42).expect("fit");
    assert_eq!(pooled.centroids, regrouped.centroids);
    assert_eq!(pooled.mean, regrouped.mean);
    assert_eq!(pooled.scale, regrouped.scale);
    assert_eq!(pooled.candidates, regrouped.candidates);
    assert_eq!(pooled.assignments, regrouped.assignments);
}

#[test]
fn population_matches_single_site_fit() {
    // The reference: pool the rows by hand in (pseudonym, index) order,
    // z-score with the population SD and run k-means with K = 3 and the
    // space's seed. The population fit must give the same centroids.
    let config = HabitatConfig {
        k: KChoice::Fixed(3),
        ..HabitatConfig::default()
    };
    let mut sets = synthetic_sets(8, 5);
    let mut shuffled = sets.clone();
    shuffled.swap(0, 7);
    shuffled.swap(2, 5);
    let fit = fit_population("MR_T1", shuffled, &config, 42).expect("fit");

    sets.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
    let n: usize = sets.iter().map(|s| s.descriptors.nrows()).sum();
    let flat: Vec<f64> = sets
        .iter()
        .flat_map(|s| s.descriptors.iter().copied())
        .collect();
    let mut rows = Array2::from_shape_vec((n, 2), flat).expect("shape");
    for column in 0..2 {
        let values = rows.column(column).to_owned();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
        rows.column_mut(column).mapv_inplace(|v| (v - mean) / sd);
    }
    let params = KMeansParams {
        n_init: 10,
        ..KMeansParams::new(3)
    };
    let reference = kmeans(rows.view(), None, &params, space_seed(42, "MR_T1")).expect("k-means");
    assert_eq!(fit.centroids, reference.centroids);
    assert_eq!(
        fit.candidates,
        vec![CandidateScore {
            k: 3,
            value: None,
            skipped: None
        }]
    );
}

#[test]
fn nearest_centroid_ties_to_lower_index() {
    let centroids = Array2::from_shape_vec((2, 1), vec![-1.0, 1.0]).expect("shape");
    assert_eq!(nearest_centroid(&[0.0], centroids.view()), 0);
    assert_eq!(nearest_centroid(&[0.5], centroids.view()), 1);
}
