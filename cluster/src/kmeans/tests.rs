use super::*;
use ndarray::{Array1, array};
use rand::Rng;

/// Builds three blobs of 9 points each, a 3 × 3 grid of spacing 0.1
/// around (0, 0), (10, 0) and (0, 10). Returns the points and each
/// point's blob.
fn three_blobs() -> (Array2<f64>, Vec<usize>) {
    let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let mut values = Vec::new();
    let mut blobs = Vec::new();
    for (blob, &(cx, cy)) in centres.iter().enumerate() {
        for dx in [-0.1, 0.0, 0.1] {
            for dy in [-0.1, 0.0, 0.1] {
                values.push(cx + dx);
                values.push(cy + dy);
                blobs.push(blob);
            }
        }
    }
    // Interleave the blobs so that row order does not reveal them.
    let rows = blobs.len();
    let order: Vec<usize> = (0..rows).map(|i| (i * 7) % rows).collect();
    let x = Array2::from_shape_fn((rows, 2), |(r, c)| values[order[r] * 2 + c]);
    let blobs = order.iter().map(|&i| blobs[i]).collect();
    (x, blobs)
}

/// Checks whether two labelings define the same partition (equal up to
/// a renaming of clusters).
fn same_partition(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len()
        && (0..a.len()).all(|i| (0..a.len()).all(|j| (a[i] == a[j]) == (b[i] == b[j])))
}

#[test]
fn kmeans_separated_blobs_are_recovered() {
    let (x, blobs) = three_blobs();
    let fit = kmeans(x.view(), None, &KMeansParams::new(3), 7).expect("valid input");
    assert_eq!(fit.n_clusters(), 3);

    assert!(
        same_partition(&fit.labels, &blobs),
        "labels {:?}",
        fit.labels
    );
    assert_eq!(fit.counts, vec![9, 9, 9]);
    assert!(fit.converged);

    // Each blob's 3 × 3 grid has its mean at the centre. Along each
    // axis six of its nine points lie 0.1 away, so the squared
    // deviations sum to 6 · 0.1² = 0.06 per axis, 0.12 per blob and
    // 0.36 in total. The tolerance covers rounding of 27 sums of
    // values near 10.
    assert!(
        (fit.inertia - 0.36).abs() < 1e-12,
        "inertia {}",
        fit.inertia
    );

    let mut centroids: Vec<(f64, f64)> = fit
        .centroids
        .rows()
        .into_iter()
        .map(|row| (row[0], row[1]))
        .collect();
    // Sort by the rounded values: a centroid at 0 can come out as
    // −3e-18 when the sums run in tree order.
    centroids.sort_by(|a, b| {
        (a.0.round(), a.1.round())
            .partial_cmp(&(b.0.round(), b.1.round()))
            .expect("finite centroids")
    });
    for (actual, expected) in centroids.iter().zip([(0.0, 0.0), (0.0, 10.0), (10.0, 0.0)]) {
        assert!((actual.0 - expected.0).abs() < 1e-12, "{actual:?}");
        assert!((actual.1 - expected.1).abs() < 1e-12, "{actual:?}");
    }
}

#[test]
fn kmeans_same_seed_is_bitwise_identical() {
    let (x, _) = three_blobs();
    let params = KMeansParams::new(3);
    let first = kmeans(x.view(), None, &params, 12345).expect("valid input");
    let second = kmeans(x.view(), None, &params, 12345).expect("valid input");
    assert_eq!(first, second);
}

#[test]
fn kmeans_other_seeds_reach_same_inertia() {
    let (x, blobs) = three_blobs();
    let params = KMeansParams::new(3);
    let reference = kmeans(x.view(), None, &params, 1).expect("valid input");
    for seed in [2, 3, 99, u64::MAX] {
        let fit = kmeans(x.view(), None, &params, seed).expect("valid input");
        // Label numbers may differ between seeds; the partition and the
        // inertia may not, because the blobs leave one optimum.
        assert!(same_partition(&fit.labels, &blobs), "seed {seed}");
        assert!(
            (fit.inertia - reference.inertia).abs() < 1e-12,
            "seed {seed}: inertia {} against {}",
            fit.inertia,
            reference.inertia
        );
    }
}

#[test]
fn kmeans_more_clusters_than_distinct_rows_reduces_k() {
    // Three distinct rows, each repeated, and one −0.0 that equals 0.0.
    let x = array![
        [0.0, 0.0],
        [1.0, 1.0],
        [0.0, 0.0],
        [5.0, 5.0],
        [1.0, 1.0],
        [-0.0, 0.0],
        [5.0, 5.0]
    ];
    let fit = kmeans(x.view(), None, &KMeansParams::new(5), 3).expect("valid input");
    assert_eq!(fit.requested_clusters, 5);
    assert_eq!(fit.n_clusters(), 3);
    assert_eq!(fit.inertia, 0.0);
    assert!(same_partition(&fit.labels, &[0, 1, 0, 2, 1, 0, 2]));
    let mut counts = fit.counts.clone();
    counts.sort_unstable();
    assert_eq!(counts, vec![2, 2, 3]);
}

#[test]
fn kmeans_all_rows_equal_gives_one_cluster() {
    let x = Array2::from_elem((6, 3), 2.5);
    let fit = kmeans(x.view(), None, &KMeansParams::new(4), 0).expect("valid input");
    assert_eq!(fit.n_clusters(), 1);
    assert_eq!(fit.labels, vec![0; 6]);
    assert_eq!(fit.centroids, Array2::from_elem((1, 3), 2.5));
    assert_eq!(fit.inertia, 0.0);
}

#[test]
fn kmeans_weighted_centroid_is_weighted_mean() {
    // One cluster over 0 (weight 3) and 1 (weight 1): mean 1/4, inertia
    // 3 · (1/4)² + 1 · (3/4)² = 3/16 + 9/16 = 3/4, all exact in binary.
    let x = array![[0.0], [1.0]];
    let weights = array![3.0, 1.0];
    let fit =
        kmeans(x.view(), Some(weights.view()), &KMeansParams::new(1), 0).expect("valid input");
    assert_eq!(fit.centroids, array![[0.25]]);
    assert_eq!(fit.inertia, 0.75);
}

#[test]
fn kmeans_integer_weights_match_repeated_rows() {
    let (x, _) = three_blobs();
    let weights: Array1<f64> = (0..x.nrows()).map(|i| (1 + i % 3) as f64).collect();
    let mut repeated = Vec::new();
    for (row, &weight) in x.rows().into_iter().zip(weights.iter()) {
        for _ in 0..weight as usize {
            repeated.extend(row.iter().copied());
        }
    }
    let repeated = Array2::from_shape_vec((repeated.len() / 2, 2), repeated).expect("pairs");
    let params = KMeansParams::new(3);
    let weighted = kmeans(x.view(), Some(weights.view()), &params, 5).expect("valid input");
    let copies = kmeans(repeated.view(), None, &params, 5).expect("valid input");
    // Both reach the blob partition; the sums run in another order, so
    // the inertias agree to rounding (values near 10, about 50 terms).
    assert!(
        (weighted.inertia - copies.inertia).abs() < 1e-12,
        "{} against {}",
        weighted.inertia,
        copies.inertia
    );
}

#[test]
fn kmeans_invalid_parameters_name_field() {
    let x = array![[0.0], [1.0]];
    let cases = [
        (
            KMeansParams {
                n_clusters: 0,
                ..KMeansParams::new(1)
            },
            "n_clusters",
        ),
        (
            KMeansParams {
                n_init: 0,
                ..KMeansParams::new(1)
            },
            "n_init",
        ),
        (
            KMeansParams {
                max_iter: 0,
                ..KMeansParams::new(1)
            },
            "max_iter",
        ),
        (
            KMeansParams {
                max_iter: MAX_ITER_LIMIT + 1,
                ..KMeansParams::new(1)
            },
            "max_iter",
        ),
        (
            KMeansParams {
                tol: -1.0,
                ..KMeansParams::new(1)
            },
            "tol",
        ),
        (
            KMeansParams {
                tol: f64::NAN,
                ..KMeansParams::new(1)
            },
            "tol",
        ),
    ];
    for (params, field) in cases {
        let error = kmeans(x.view(), None, &params, 0).unwrap_err();
        assert!(error.to_string().contains(field), "{error}");
    }
}

#[test]
fn kmeans_invalid_data_is_rejected() {
    let params = KMeansParams::new(2);
    let empty = Array2::<f64>::zeros((0, 2));
    assert_eq!(
        kmeans(empty.view(), None, &params, 0).unwrap_err(),
        KMeansError::EmptyData {
            rows: 0,
            columns: 2
        }
    );
    let x = array![[0.0, 1.0], [f64::NAN, 2.0]];
    assert!(matches!(
        kmeans(x.view(), None, &params, 0).unwrap_err(),
        KMeansError::NonFiniteValue {
            row: 1,
            column: 0,
            ..
        }
    ));
    let x = array![[0.0], [1.0]];
    let short = array![1.0];
    assert_eq!(
        kmeans(x.view(), Some(short.view()), &params, 0).unwrap_err(),
        KMeansError::WeightsLength {
            weights: 1,
            rows: 2
        }
    );
    let zero = array![1.0, 0.0];
    assert_eq!(
        kmeans(x.view(), Some(zero.view()), &params, 0).unwrap_err(),
        KMeansError::InvalidWeight { row: 1, value: 0.0 }
    );
}

/// Builds `rows` random rows in [0, 1)² where about one row in four
/// repeats an earlier row, so the data have duplicates.
fn random_rows_with_duplicates(rows: usize, seed: u64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut values: Vec<[f64; 2]> = Vec::with_capacity(rows);
    for _ in 0..rows {
        if !values.is_empty() && rng.gen_range(0..4) == 0 {
            let earlier = values[rng.gen_range(0..values.len())];
            values.push(earlier);
        } else {
            values.push([rng.r#gen::<f64>(), rng.r#gen::<f64>()]);
        }
    }
    Array2::from_shape_fn((rows, 2), |(row, column)| values[row][column])
}

#[test]
fn kmeans_integer_weights_equal_repeated_rows_exactly() {
    // Equal rows merge before the fit, so integer weights and copies
    // give the same distinct points with the same weights, and hence
    // the same fit bit for bit, whatever the row order.
    let x = random_rows_with_duplicates(400, 8);
    let weights: Array1<f64> = (0..x.nrows()).map(|i| (1 + i % 4) as f64).collect();
    let mut repeated = Vec::new();
    let mut source_row = Vec::new();
    // Copies go in reverse row order to show that order does not matter.
    for row in (0..x.nrows()).rev() {
        for _ in 0..weights[row] as usize {
            repeated.extend(x.row(row).iter().copied());
            source_row.push(row);
        }
    }
    let repeated = Array2::from_shape_vec((source_row.len(), 2), repeated).expect("pairs");
    let params = KMeansParams::new(12);
    let weighted = kmeans(x.view(), Some(weights.view()), &params, 5).expect("valid input");
    let copies = kmeans(repeated.view(), None, &params, 5).expect("valid input");

    for (copy, &row) in source_row.iter().enumerate() {
        assert_eq!(copies.labels[copy], weighted.labels[row], "copy {copy}");
    }
    assert_eq!(copies.centroids, weighted.centroids);
    assert_eq!(copies.inertia, weighted.inertia);
    assert_eq!(copies.iterations, weighted.iterations);
    assert_eq!(copies.best_run, weighted.best_run);
    // counts are rows, so the copies count each row weight times.
    let expected_counts: Vec<usize> = (0..weighted.n_clusters())
        .map(|cluster| {
            (0..x.nrows())
                .filter(|&row| weighted.labels[row] == cluster)
                .map(|row| weights[row] as usize)
                .sum()
        })
        .collect();
    assert_eq!(copies.counts, expected_counts);
}

#[test]
fn kmeans_fractional_weights_scale_freely() {
    // Doubling every weight doubles each point's share in the seeding
    // draws and in the sums by the same factor, an exact operation in
    // binary, so the fit is the same and the inertia exactly doubles.
    let x = random_rows_with_duplicates(300, 9);
    let weights: Array1<f64> = (0..x.nrows())
        .map(|i| 0.25 + (i % 7) as f64 * 0.3)
        .collect();
    let doubled = weights.mapv(|w| 2.0 * w);
    let params = KMeansParams::new(7);
    let fit = kmeans(x.view(), Some(weights.view()), &params, 2).expect("valid input");
    let twice = kmeans(x.view(), Some(doubled.view()), &params, 2).expect("valid input");
    assert_eq!(fit.labels, twice.labels);
    assert_eq!(fit.centroids, twice.centroids);
    assert_eq!(2.0 * fit.inertia, twice.inertia);
}

#[test]
fn kmeans_restart_matches_single_run_with_its_stream() {
    let x = random_rows_with_duplicates(500, 21);
    let all = KMeansParams {
        n_init: 4,
        ..KMeansParams::new(5)
    };
    let fit = kmeans(x.view(), None, &all, 21).expect("valid input");
    // n_init = 1 with the winning run's stream: re-run it alone through
    // the same internal steps.
    let rows = Rows::new(x.view(), None).expect("valid input");
    let points = DistinctPoints::new(&rows);
    let tree = KdTree::new(&points);
    let tolerance = all.tol * mean_column_variance(&points);
    let mut rng = run_rng(21, fit.best_run);
    let centroids = Seeding::new(&tree).choose(&tree, &tree, 5, &mut rng);
    let run = lloyd::lloyd(&tree, centroids, 5, all.max_iter, tolerance);
    assert_eq!(run.inertia, fit.inertia);
    assert_eq!(run.iterations, fit.iterations);
    assert_eq!(
        run.centroids,
        fit.centroids.iter().copied().collect::<Vec<_>>()
    );
}
