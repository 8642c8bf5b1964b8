//! Partition quality for any labels: the within-cluster sum of squares
//! (inertia) and the Calinski–Harabasz index.

use ndarray::{ArrayView1, ArrayView2};

use super::KMeansError;
use super::points::{Rows, squared_distance};

/// Computes the weighted within-cluster sum of squares
/// Σ_i w_i ‖x_i − centroids[labels[i]]‖² for any centroids, for example
/// ones fitted on other data.
pub fn inertia(
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    centroids: ArrayView2<'_, f64>,
    weights: Option<ArrayView1<'_, f64>>,
) -> Result<f64, KMeansError> {
    let data = Rows::new(x, weights)?;
    check_labels(&data, labels, centroids.nrows())?;
    if centroids.ncols() != data.columns {
        return Err(KMeansError::CentroidColumns {
            centroid_columns: centroids.ncols(),
            data_columns: data.columns,
        });
    }
    let flat: Vec<f64> = centroids.iter().copied().collect();
    Ok(weighted_inertia(&data, &flat, labels))
}

/// Computes the Calinski–Harabasz index of a partition,
///
/// ```text
/// CH = [B / (K − 1)] / [W / (N − K)],
/// B  = Σ_k N_k ‖c_k − c̄‖²,   W = Σ_k Σ_{i in k} w_i ‖x_i − c_k‖²,
/// ```
///
/// with c_k the weighted mean of cluster k, N_k its total weight, c̄ the
/// weighted mean of all rows, N the total weight and K the number of
/// non-empty clusters (distinct labels). Without weights, N_k and N are row
/// counts, as in scikit-learn's `calinski_harabasz_score` (which cites
/// T. Caliński and J. Harabasz, Commun. Stat. 3, 1974). Weights act as
/// frequency weights: integer weights give the index of the data with each
/// row repeated.
///
/// Requires 2 ≤ K < N. Returns +∞ when W = 0 and B > 0 (every row equals
/// its cluster mean), the limit of the ratio. scikit-learn returns 1.0 in
/// that case.
pub fn calinski_harabasz(
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    weights: Option<ArrayView1<'_, f64>>,
) -> Result<f64, KMeansError> {
    let data = Rows::new(x, weights)?;
    let clusters = labels.iter().copied().max().map_or(0, |max| max + 1);
    check_labels(&data, labels, clusters)?;

    let columns = data.columns;
    let mut sums = vec![0.0; clusters * columns];
    let mut cluster_weights = vec![0.0; clusters];
    let mut overall = vec![0.0; columns];
    for (row, &label) in labels.iter().enumerate() {
        let weight = data.weights[row];
        cluster_weights[label] += weight;
        for (column, &value) in data.row(row).iter().enumerate() {
            sums[label * columns + column] += weight * value;
            overall[column] += weight * value;
        }
    }
    let total_weight: f64 = data.weights.iter().sum();
    for value in &mut overall {
        *value /= total_weight;
    }

    let non_empty = cluster_weights.iter().filter(|&&w| w > 0.0).count();
    if non_empty < 2 || (non_empty as f64) >= total_weight {
        return Err(KMeansError::ClusterCountOutOfRange {
            clusters: non_empty,
            total_weight,
        });
    }

    let mut means = sums;
    let mut between = 0.0;
    for cluster in 0..clusters {
        let weight = cluster_weights[cluster];
        if weight == 0.0 {
            continue;
        }
        let mean = &mut means[cluster * columns..(cluster + 1) * columns];
        for value in mean.iter_mut() {
            *value /= weight;
        }
        between += weight * squared_distance(mean, &overall);
    }
    let within = weighted_inertia(&data, &means, labels);

    let clusters = non_empty as f64;
    if within == 0.0 {
        return if between > 0.0 {
            Ok(f64::INFINITY)
        } else {
            Err(KMeansError::UndefinedIndex)
        };
    }
    Ok((between / (clusters - 1.0)) / (within / (total_weight - clusters)))
}

fn check_labels(data: &Rows, labels: &[usize], clusters: usize) -> Result<(), KMeansError> {
    if labels.len() != data.rows {
        return Err(KMeansError::LabelsLength {
            labels: labels.len(),
            rows: data.rows,
        });
    }
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= clusters) {
        return Err(KMeansError::LabelOutOfRange {
            row,
            label,
            clusters,
        });
    }
    Ok(())
}

fn weighted_inertia(data: &Rows, centroids: &[f64], labels: &[usize]) -> f64 {
    let columns = data.columns;
    labels
        .iter()
        .enumerate()
        .map(|(row, &label)| {
            let centroid = &centroids[label * columns..(label + 1) * columns];
            data.weights[row] * squared_distance(data.row(row), centroid)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn calinski_harabasz_hand_example() {
        // Clusters {0, 2} and {10, 12} on a line: means 1 and 11, overall
        // mean 6. B = 2 · 5² + 2 · 5² = 100, W = 4 · 1² = 4, N = 4, K = 2,
        // so CH = (100 / 1) / (4 / 2) = 50, exact in binary.
        let x = array![[0.0], [2.0], [10.0], [12.0]];
        let index = calinski_harabasz(x.view(), &[0, 0, 1, 1], None).expect("2 ≤ K < N");
        assert_eq!(index, 50.0);
    }

    #[test]
    fn calinski_harabasz_two_dimensional_hand_example() {
        // Cluster 0: (0, 0), (2, 0), (1, 3), mean (1, 1); squared
        // deviations 2 + 2 + 4 = 8. Cluster 1: (6, 6), (8, 6), mean (7, 6);
        // deviations 1 + 1 = 2. Overall mean (17/5, 3). B = 3 · ((1 −
        // 3.4)² + 2²) + 2 · ((7 − 3.4)² + 3²) = 3 · 9.76 + 2 · 21.96 =
        // 73.2; W = 10; N = 5 and K = 2, so CH = (73.2 / 1) / (10 / 3) =
        // 21.96. Rounding of 17/5 and of the squares stays below 1e-12.
        let x = array![[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [6.0, 6.0], [8.0, 6.0]];
        let index = calinski_harabasz(x.view(), &[0, 0, 0, 1, 1], None).expect("2 ≤ K < N");
        assert!((index - 21.96).abs() < 1e-12, "CH {index}");
    }

    #[test]
    fn calinski_harabasz_integer_weights_match_repeated_rows() {
        let x = array![[0.0], [2.0], [10.0], [12.0], [5.0]];
        let labels = [0, 0, 1, 1, 1];
        let weights = array![2.0, 1.0, 1.0, 3.0, 1.0];
        let repeated = array![[0.0], [0.0], [2.0], [10.0], [12.0], [12.0], [12.0], [5.0]];
        let repeated_labels = [0, 0, 0, 1, 1, 1, 1, 1];
        let weighted =
            calinski_harabasz(x.view(), &labels, Some(weights.view())).expect("2 ≤ K < N");
        let copies = calinski_harabasz(repeated.view(), &repeated_labels, None).expect("2 ≤ K < N");
        assert!(
            (weighted - copies).abs() < 1e-12 * copies,
            "{weighted} against {copies}"
        );
    }

    #[test]
    fn calinski_harabasz_edge_cases() {
        let x = array![[0.0], [0.0], [3.0], [3.0]];
        assert_eq!(
            calinski_harabasz(x.view(), &[0, 0, 1, 1], None),
            Ok(f64::INFINITY)
        );
        assert_eq!(
            calinski_harabasz(x.view(), &[0, 0, 0, 0], None),
            Err(KMeansError::ClusterCountOutOfRange {
                clusters: 1,
                total_weight: 4.0
            })
        );
        assert!(matches!(
            calinski_harabasz(x.view(), &[0, 1, 2, 3], None),
            Err(KMeansError::ClusterCountOutOfRange { clusters: 4, .. })
        ));
        let same = array![[1.0], [1.0], [1.0]];
        assert_eq!(
            calinski_harabasz(same.view(), &[0, 1, 1], None),
            Err(KMeansError::UndefinedIndex)
        );
        assert!(matches!(
            calinski_harabasz(x.view(), &[0, 1], None),
            Err(KMeansError::LabelsLength { labels: 2, rows: 4 })
        ));
    }

    #[test]
    fn inertia_of_given_centroids() {
        // Rows 0 and 4 against centroid 1, row 10 against centroid 8:
        // 1 + 9 + 4 = 14.
        let x = array![[0.0], [4.0], [10.0]];
        let centroids = array![[1.0], [8.0]];
        assert_eq!(
            inertia(x.view(), &[0, 0, 1], centroids.view(), None),
            Ok(14.0)
        );
        assert!(matches!(
            inertia(x.view(), &[0, 0, 2], centroids.view(), None),
            Err(KMeansError::LabelOutOfRange {
                row: 2,
                label: 2,
                ..
            })
        ));
    }
}
