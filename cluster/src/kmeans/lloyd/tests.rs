use super::*;
use crate::kmeans::points::{DistinctPoints, Rows, mean_column_variance, order_key};
use crate::kmeans::run_rng;
use crate::kmeans::seeding::Seeding;
use ndarray::{Array1, Array2, array};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeSet;

/// Result of [`plain_lloyd`], with one label per row.
struct Reference {
    labels: Vec<usize>,
    centroids: Vec<f64>,
    inertia: f64,
    iterations: usize,
}

fn nearest(row: &[f64], centroids: &[f64], columns: usize) -> usize {
    let mut best = (0, f64::INFINITY);
    for (cluster, centroid) in centroids.chunks_exact(columns).enumerate() {
        let distance = squared_distance(row, centroid);
        if distance < best.1 {
            best = (cluster, distance);
        }
    }
    best.0
}

/// Plain Lloyd iterations on the rows as given, with every distance
/// computed and the sums taken row by row: the reference for [`lloyd`].
/// Relocation follows the module rule written out on rows: the
/// farthest row whose cluster also contains a row with other values,
/// ties to the lexicographically smallest values, moves with every row
/// equal to it.
fn plain_lloyd(
    rows: &Rows,
    mut centroids: Vec<f64>,
    k: usize,
    max_iter: usize,
    shift_tolerance: f64,
) -> Reference {
    let columns = rows.columns;
    let key = |row: usize| -> Vec<u64> { rows.row(row).iter().map(|&v| order_key(v)).collect() };
    let mut labels = vec![usize::MAX; rows.rows];
    let mut iterations = 0;
    for step in 1..=max_iter {
        iterations = step;
        let mut next: Vec<usize> = (0..rows.rows)
            .map(|row| nearest(rows.row(row), &centroids, columns))
            .collect();
        let mut distances: Vec<f64> = (0..rows.rows)
            .map(|row| {
                let label = next[row];
                squared_distance(
                    rows.row(row),
                    &centroids[label * columns..(label + 1) * columns],
                )
            })
            .collect();
        for cluster in 0..k {
            if next.contains(&cluster) {
                continue;
            }
            let mut distinct_in: Vec<BTreeSet<Vec<u64>>> = vec![BTreeSet::new(); k];
            for row in 0..rows.rows {
                distinct_in[next[row]].insert(key(row));
            }
            let farthest = (0..rows.rows)
                .filter(|&row| distinct_in[next[row]].len() >= 2)
                .reduce(|best, row| {
                    let farther = distances[row] > distances[best]
                        || (distances[row] == distances[best] && key(row) < key(best));
                    if farther { row } else { best }
                })
                .expect("k ≤ distinct rows");
            let moved = key(farthest);
            for row in 0..rows.rows {
                if key(row) == moved {
                    next[row] = cluster;
                    distances[row] = 0.0;
                }
            }
        }
        if next == labels {
            break;
        }
        labels = next;

        let mut sums = vec![0.0; k * columns];
        let mut weights = vec![0.0; k];
        for (row, &label) in labels.iter().enumerate() {
            weights[label] += rows.weights[row];
            for (column, &value) in rows.row(row).iter().enumerate() {
                sums[label * columns + column] += rows.weights[row] * value;
            }
        }
        for cluster in 0..k {
            for value in &mut sums[cluster * columns..(cluster + 1) * columns] {
                *value /= weights[cluster];
            }
        }
        let shift = squared_distance(&sums, &centroids);
        centroids = sums;
        if shift <= shift_tolerance {
            break;
        }
    }
    let inertia = (0..rows.rows)
        .map(|row| {
            let label = labels[row];
            rows.weights[row]
                * squared_distance(
                    rows.row(row),
                    &centroids[label * columns..(label + 1) * columns],
                )
        })
        .sum();
    Reference {
        labels,
        centroids,
        inertia,
        iterations,
    }
}

/// Returns the label of each row from the labels of the tree's points.
fn row_labels(tree: &KdTree, points: &DistinctPoints, labels: &[u32]) -> Vec<usize> {
    let mut position = vec![0usize; tree.len()];
    for (tree_position, &rank) in tree.rank.iter().enumerate() {
        position[rank as usize] = tree_position;
    }
    points
        .point_of_row
        .iter()
        .map(|&point| labels[position[point as usize]] as usize)
        .collect()
}

/// Builds `rows` × `columns` values where about one row in four repeats
/// an earlier row. Coarse values are integers 0..6, where exact ties
/// between centroids are common; fine values are uniform in [0, 1).
fn random_data(
    rng: &mut Xoshiro256PlusPlus,
    rows: usize,
    columns: usize,
    coarse: bool,
) -> Array2<f64> {
    let mut values: Vec<f64> = Vec::with_capacity(rows * columns);
    for row in 0..rows {
        if row > 0 && rng.gen_range(0..4) == 0 {
            let earlier = rng.gen_range(0..row);
            let copy = values[earlier * columns..(earlier + 1) * columns].to_vec();
            values.extend(copy);
        } else {
            for _ in 0..columns {
                values.push(if coarse {
                    rng.gen_range(0..6) as f64
                } else {
                    rng.r#gen::<f64>()
                });
            }
        }
    }
    Array2::from_shape_vec((rows, columns), values).expect("rows × columns")
}

#[test]
fn lloyd_matches_plain_reference() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    for case in 0..60 {
        let rows = [50, 200, 1000][case % 3];
        let columns = [1, 2, 3, 2][case % 4];
        let k = [1, 2, 5, 12, 40][case % 5];
        let coarse = case % 2 == 0;
        let x = random_data(&mut rng, rows, columns, coarse);
        let weights: Array1<f64> = (0..rows).map(|i| 1.0 + (i % 4) as f64).collect();
        let weighted = case % 3 == 1;
        let data = Rows::new(x.view(), weighted.then(|| weights.view())).expect("valid input");
        let points = DistinctPoints::new(&data);
        let tree = KdTree::new(&points);
        let k = k.min(points.len());
        let tolerance = [0.0, 1e-4][case % 2] * mean_column_variance(&points);
        let mut rng_run = run_rng(case as u64, 0);
        let seeds = Seeding::new(&tree).choose(&tree, &tree, k, &mut rng_run);

        let run = lloyd(&tree, seeds.clone(), k, 300, tolerance);
        let reference = plain_lloyd(&data, seeds, k, 300, tolerance);
        assert_eq!(
            row_labels(&tree, &points, &run.labels),
            reference.labels,
            "case {case}: labels"
        );
        assert_eq!(
            run.iterations, reference.iterations,
            "case {case}: iterations"
        );
        if coarse {
            // Integer values and weights: every cluster sum is exact,
            // so the summation order cannot change the centroids.
            assert_eq!(run.centroids, reference.centroids, "case {case}: centroids");
        } else {
            // Sums of up to 1000 terms below 4 in two orders differ by
            // a few ulp of the sums, far below 1e-12.
            for (a, b) in run.centroids.iter().zip(&reference.centroids) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "case {case}: {a} against {b}"
                );
            }
        }
        // The inertia adds squared distances in tree order instead of
        // row order, over merged rows: equal up to the rounding of
        // about 1000 positive terms, far below 1e-12 relative.
        assert!(
            (run.inertia - reference.inertia).abs() <= 1e-12 * reference.inertia,
            "case {case}: inertia {} against {}",
            run.inertia,
            reference.inertia
        );
    }
}

#[test]
fn lloyd_matches_plain_after_relocation() {
    // Seeds with two centroids far from every row: both clusters are
    // empty after the first assignment and take the farthest rows. Row
    // 9.0 appears twice and moves as one point.
    let x = array![[0.0], [0.1], [0.2], [5.0], [9.0], [5.1], [9.0]];
    let data = Rows::new(x.view(), None).expect("valid input");
    let points = DistinctPoints::new(&data);
    let tree = KdTree::new(&points);
    let seeds = vec![0.1, 100.0, 200.0];
    let run = lloyd(&tree, seeds.clone(), 3, 300, 0.0);
    let reference = plain_lloyd(&data, seeds, 3, 300, 0.0);
    let labels = row_labels(&tree, &points, &run.labels);
    assert_eq!(labels, reference.labels);
    assert_eq!(run.iterations, reference.iterations);
    // The relocations end in the three natural groups.
    assert_eq!(labels[4], labels[6]);
    assert_ne!(labels[0], labels[3]);
    assert_ne!(labels[3], labels[4]);
    assert_eq!(labels[3], labels[5]);
}

#[test]
fn relocation_takes_farthest_point_lowest_rank_on_ties() {
    // Centroid 1 is far from every point and ends up empty. Points −1
    // and 3 are both at squared distance 4 from centroid 0 at 1, and
    // the tie goes to −1, the lower rank.
    let x = array![[-1.0], [1.0], [3.0], [1.0]];
    let data = Rows::new(x.view(), None).expect("valid input");
    let points = DistinctPoints::new(&data);
    let tree = KdTree::new(&points);
    let run = lloyd(&tree, vec![1.0, 50.0], 2, 1, 0.0);
    let labels = row_labels(&tree, &points, &run.labels);
    assert_eq!(labels, vec![1, 0, 0, 0]);
    // The new centroids are the means: (1 + 3 + 1) / 3 and −1.
    assert_eq!(run.centroids[1], -1.0);
}

#[test]
fn lloyd_walk_copies_agree_bitwise() {
    // The AVX2 copy of the walk runs wherever the CPU has it, so the other
    // tests only reach the baseline copy on older CPUs. Both copies make
    // the same operations in the same order, so every output is equal
    // bit for bit, not only within a tolerance.
    let walk = Walk::detect();
    if walk == Walk::Baseline {
        eprintln!("this CPU runs only the baseline walk; nothing to compare");
        return;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(29);
    for case in 0..12 {
        let columns = [1, 2, 3, 4, 6, 2][case % 6];
        let x = random_data(&mut rng, 2000, columns, case % 2 == 0);
        let data = Rows::new(x.view(), None).expect("valid input");
        let points = DistinctPoints::new(&data);
        let tree = KdTree::new(&points);
        let layout = Layout::new(&tree);
        let k = 40.min(points.len());
        let tolerance = 1e-4 * mean_column_variance(&points);
        let seeds = Seeding::new(&tree).choose(&tree, &tree, k, &mut run_rng(case as u64, 0));

        let runs: Vec<Run> = [Walk::Baseline, walk]
            .into_iter()
            .map(|copy| {
                with_layout!(&layout, &tree, data => {
                    lloyd_with(data, &tree, seeds.clone(), k, 300, tolerance, copy)
                })
            })
            .collect();
        assert_eq!(runs[0].labels, runs[1].labels, "case {case}: labels");
        assert_eq!(
            runs[0].centroids, runs[1].centroids,
            "case {case}: centroids"
        );
        assert_eq!(
            runs[0].inertia.to_bits(),
            runs[1].inertia.to_bits(),
            "case {case}: inertia"
        );
        assert_eq!(
            runs[0].iterations, runs[1].iterations,
            "case {case}: iterations"
        );
    }
}
