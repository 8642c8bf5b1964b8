//! Validated input rows and their distinct points.
//!
//! The fit runs on the distinct rows, each with the summed weight of the
//! rows equal to it, in lexicographic order of their values. Rows are equal
//! when every value is numerically equal (−0.0 equals 0.0). This form
//! depends only on the multiset of rows and weights. A row of integer
//! weight w therefore gives the same fit as w copies of the row with
//! weight 1, and the order of the rows does not change the fit.

use ndarray::{ArrayView1, ArrayView2};

use super::KMeansError;

/// Validated rows in row-major order with their weights.
pub(super) struct Rows {
    pub(super) values: Vec<f64>,
    pub(super) weights: Vec<f64>,
    pub(super) rows: usize,
    pub(super) columns: usize,
}

impl Rows {
    pub(super) fn new(
        x: ArrayView2<'_, f64>,
        weights: Option<ArrayView1<'_, f64>>,
    ) -> Result<Self, KMeansError> {
        let (rows, columns) = x.dim();
        if rows == 0 || columns == 0 {
            return Err(KMeansError::EmptyData { rows, columns });
        }
        if rows >= u32::MAX as usize {
            return Err(KMeansError::TooManyRows { rows });
        }
        // Row-major copy, so that entry i is row i / columns, column
        // i % columns.
        let values: Vec<f64> = x.iter().copied().collect();
        if let Some(position) = values.iter().position(|value| !value.is_finite()) {
            return Err(KMeansError::NonFiniteValue {
                row: position / columns,
                column: position % columns,
                value: values[position],
            });
        }
        let weights = match weights {
            None => vec![1.0; rows],
            Some(weights) => {
                if weights.len() != rows {
                    return Err(KMeansError::WeightsLength {
                        weights: weights.len(),
                        rows,
                    });
                }
                if let Some((row, &value)) = weights
                    .iter()
                    .enumerate()
                    .find(|(_, w)| !(w.is_finite() && **w > 0.0))
                {
                    return Err(KMeansError::InvalidWeight { row, value });
                }
                weights.to_vec()
            }
        };
        Ok(Rows {
            values,
            weights,
            rows,
            columns,
        })
    }

    pub(super) fn row(&self, row: usize) -> &[f64] {
        &self.values[row * self.columns..(row + 1) * self.columns]
    }
}

/// The distinct rows of a [`Rows`] with their summed weights, in
/// lexicographic order of their values.
pub(super) struct DistinctPoints {
    /// Values, points × columns; −0.0 is stored as 0.0.
    pub(super) values: Vec<f64>,
    /// Sum of the weights of the rows equal to each point, added in row
    /// order.
    pub(super) weights: Vec<f64>,
    /// Number of rows equal to each point.
    pub(super) row_counts: Vec<usize>,
    /// Point of each input row.
    pub(super) point_of_row: Vec<u32>,
    pub(super) columns: usize,
}

impl DistinctPoints {
    pub(super) fn new(rows: &Rows) -> Self {
        let columns = rows.columns;
        let keys: Vec<u64> = rows.values.iter().map(|&value| order_key(value)).collect();
        let key = |row: u32| {
            let start = row as usize * columns;
            &keys[start..start + columns]
        };
        let mut order: Vec<u32> = (0..rows.rows as u32).collect();
        if columns == 2 {
            // The common case of the habitat step: sort packed keys, which
            // is several times faster than sorting indices through a
            // comparison closure.
            let mut packed: Vec<(u64, u64, u32)> = order
                .iter()
                .map(|&row| (key(row)[0], key(row)[1], row))
                .collect();
            packed.sort_unstable();
            for (slot, &(_, _, row)) in order.iter_mut().zip(&packed) {
                *slot = row;
            }
        } else {
            order.sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        }

        let mut values = Vec::with_capacity(rows.values.len());
        let mut weights = Vec::with_capacity(rows.rows);
        let mut row_counts = Vec::with_capacity(rows.rows);
        let mut point_of_row = vec![0u32; rows.rows];
        let mut previous: Option<u32> = None;
        for &row in &order {
            // Compared key by key: the slice comparison `==` calls `memcmp`
            // once per row, which costs more than the few keys of a row.
            let same = previous
                .is_some_and(|previous| key(previous).iter().zip(key(row)).all(|(a, b)| a == b));
            if !same {
                values.extend(rows.row(row as usize).iter().map(|&value| value + 0.0));
                weights.push(0.0);
                row_counts.push(0);
            }
            let point = weights.len() - 1;
            weights[point] += rows.weights[row as usize];
            row_counts[point] += 1;
            point_of_row[row as usize] = point as u32;
            previous = Some(row);
        }
        DistinctPoints {
            values,
            weights,
            row_counts,
            point_of_row,
            columns,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.weights.len()
    }

    pub(super) fn point(&self, point: usize) -> &[f64] {
        &self.values[point * self.columns..(point + 1) * self.columns]
    }
}

/// Maps a finite value to a key whose unsigned order is the numeric order
/// of the values, with −0.0 and 0.0 on the same key.
pub(super) fn order_key(value: f64) -> u64 {
    // Adding 0.0 turns −0.0 into 0.0. Negative values flip all bits so that
    // larger magnitudes come first; non-negative values set the sign bit so
    // that they follow every negative value.
    let bits = (value + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

pub(super) fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| {
            let difference = p - q;
            difference * difference
        })
        .sum()
}

/// Returns the mean over columns of the weighted population variance of
/// each column of the points.
pub(super) fn mean_column_variance(points: &DistinctPoints) -> f64 {
    let columns = points.columns;
    let total_weight: f64 = points.weights.iter().sum();
    let mut sum_of_variances = 0.0;
    for column in 0..columns {
        let value = |point: usize| points.values[point * columns + column];
        let mean = (0..points.len())
            .map(|point| points.weights[point] * value(point))
            .sum::<f64>()
            / total_weight;
        let variance = (0..points.len())
            .map(|point| {
                let difference = value(point) - mean;
                points.weights[point] * difference * difference
            })
            .sum::<f64>()
            / total_weight;
        sum_of_variances += variance;
    }
    sum_of_variances / columns as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn order_key_follows_numeric_order() {
        let values = [-f64::MAX, -2.5, -1e-300, -0.0, 0.0, 1e-300, 3.0, f64::MAX];
        for pair in values.windows(2) {
            let (low, high) = (order_key(pair[0]), order_key(pair[1]));
            if pair[0] == pair[1] {
                assert_eq!(low, high, "{pair:?}");
            } else {
                assert!(low < high, "{pair:?}");
            }
        }
    }

    #[test]
    fn distinct_points_merge_equal_rows() {
        let x = array![[1.0, 0.0], [0.0, 2.0], [1.0, -0.0], [0.0, 2.0], [0.0, 1.0]];
        let weights = array![1.0, 2.0, 3.0, 4.0, 5.0];
        let rows = Rows::new(x.view(), Some(weights.view())).expect("valid input");
        let points = DistinctPoints::new(&rows);
        assert_eq!(points.values, vec![0.0, 1.0, 0.0, 2.0, 1.0, 0.0]);
        assert_eq!(points.weights, vec![5.0, 6.0, 4.0]);
        assert_eq!(points.row_counts, vec![1, 2, 2]);
        assert_eq!(points.point_of_row, vec![2, 1, 2, 1, 0]);
        // The stored −0.0 became 0.0 (checked by sign, which == ignores).
        assert!(points.values.iter().all(|v| v.is_sign_positive()));
    }
}
