//! Sufficient statistics of the reproducibility (ICC) design of one feature.
//!
//! The design has n subjects (patients), each measured k times (the
//! perturbed copies). With x_ij the value of copy j of subject i and s the
//! shift, the statistics are
//!
//! ```text
//! T      = Σ_ij (x_ij − s)
//! Q      = Σ_ij (x_ij − s)²
//! Σ R_i² = Σ_i (Σ_j (x_ij − s))²      R_i, the total of subject i
//! C_j    = Σ_i (x_ij − s)             one total per copy, k values
//! ```
//!
//! From them the coordinator computes the two-way ANOVA mean squares and
//! ICC(1,1), ICC(2,1) and ICC(3,1). The shift s is the mean of all n·k
//! values. An ICC does not change when every value moves by the same amount,
//! and centring keeps Q − T²/(nk) from cancelling when a feature's values
//! are large and close together. Every sum is compensated
//! ([`CompensatedSum`]).

use super::CompensatedSum;

/// The statistics of one feature over n subjects × k copies, each sum taken
/// over `x − shift`.
#[derive(Debug, Clone, PartialEq)]
pub struct IccSums {
    /// Number of subjects n.
    pub n_subjects: usize,
    /// Mean of all n·k values, subtracted from every value before summing.
    pub shift: f64,
    /// T = Σ_ij (x_ij − shift).
    pub sum: f64,
    /// Q = Σ_ij (x_ij − shift)².
    pub sum_squares: f64,
    /// Σ_i R_i², with R_i = Σ_j (x_ij − shift).
    pub sum_squared_subject_totals: f64,
    /// C_j = Σ_i (x_ij − shift), k values.
    pub copy_sums: Vec<f64>,
}

/// A table that the statistics are not defined for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IccSumsError {
    /// The table has no subject, so the shift is undefined.
    #[error("no subjects; the ICC sums need at least one subject")]
    NoSubjects,
    /// Fewer than two copies per subject.
    #[error("{copies} copies per subject; the ICC needs at least 2")]
    TooFewCopies {
        /// Copies of the first subject.
        copies: usize,
    },
    /// A subject has a different number of copies from the first subject.
    #[error("subject {subject} has {found} copies, but subject 0 has {expected}")]
    RaggedRow {
        /// Index of the subject, from 0.
        subject: usize,
        /// Copies of the first subject.
        expected: usize,
        /// Copies of this subject.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("copy {copy} of subject {subject} is {value}; every value must be finite")]
    NonFinite {
        /// Index of the subject, from 0.
        subject: usize,
        /// Index of the copy, from 0.
        copy: usize,
        /// The value.
        value: f64,
    },
}

/// Computes the statistics of `rows`, one row per subject with its k copy
/// values in copy order.
///
/// # Errors
///
/// [`IccSumsError`] for an empty table, fewer than 2 copies, rows of
/// different lengths, or a value that is not finite.
pub fn icc_sums(rows: &[&[f64]]) -> Result<IccSums, IccSumsError> {
    let first = rows.first().ok_or(IccSumsError::NoSubjects)?;
    let copies = first.len();
    if copies < 2 {
        return Err(IccSumsError::TooFewCopies { copies });
    }
    for (subject, row) in rows.iter().enumerate() {
        if row.len() != copies {
            return Err(IccSumsError::RaggedRow {
                subject,
                expected: copies,
                found: row.len(),
            });
        }
        if let Some((copy, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(IccSumsError::NonFinite {
                subject,
                copy,
                value,
            });
        }
    }

    // First pass: the shift, the mean of all n·k values.
    let mut total = CompensatedSum::default();
    for &value in rows.iter().flat_map(|row| row.iter()) {
        total.add(value);
    }
    let shift = total.total() / (rows.len() * copies) as f64;

    // Second pass: the sums over x − shift.
    let mut sum = CompensatedSum::default();
    let mut sum_squares = CompensatedSum::default();
    let mut sum_squared_subject_totals = CompensatedSum::default();
    let mut copy_sums = vec![CompensatedSum::default(); copies];
    for row in rows {
        let mut subject_total = CompensatedSum::default();
        for (copy, &value) in row.iter().enumerate() {
            let centred = value - shift;
            sum.add(centred);
            sum_squares.add(centred * centred);
            subject_total.add(centred);
            copy_sums[copy].add(centred);
        }
        let subject_total = subject_total.total();
        sum_squared_subject_totals.add(subject_total * subject_total);
    }

    Ok(IccSums {
        n_subjects: rows.len(),
        shift,
        sum: sum.total(),
        sum_squares: sum_squares.total(),
        sum_squared_subject_totals: sum_squared_subject_totals.total(),
        copy_sums: copy_sums.iter().map(CompensatedSum::total).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums of a few values of order 10 in another order: a few ulps of the
    /// largest sum (Q ≈ 100 here), so 1e-12 is far above rounding and far
    /// below any formula error.
    const DIRECT_TOLERANCE: f64 = 1e-12;

    /// 4 subjects × 3 copies.
    const TABLE: [[f64; 3]; 4] = [
        [1.0, 2.0, 3.0],
        [4.0, 4.5, 5.0],
        [10.0, 8.0, 9.0],
        [0.5, 0.0, -0.5],
    ];

    fn rows(table: &[[f64; 3]]) -> Vec<&[f64]> {
        table.iter().map(|row| row.as_slice()).collect()
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    #[test]
    fn icc_sums_hand_table() {
        let sums = icc_sums(&rows(&TABLE)).expect("valid table");
        // Shift: the 12 values add to 46.5, so the mean is 46.5 / 12 = 3.875.
        assert_eq!(sums.n_subjects, 4);
        assert_close(sums.shift, 3.875, DIRECT_TOLERANCE, "shift");
        // Centred on their own mean, the values add to 0.
        assert_close(sums.sum, 0.0, DIRECT_TOLERANCE, "T");
        // Raw Σx² = 14 + 61.25 + 245 + 0.5 = 320.75, and
        // Σ(x − m)² = Σx² − 12 m² = 320.75 − 180.1875 = 140.5625.
        assert_close(sums.sum_squares, 140.5625, DIRECT_TOLERANCE, "Q");
        // Subject totals 6, 13.5, 27, 0 minus 3 m = 11.625 give
        // −5.625, 1.875, 15.375, −11.625, whose squares add to
        // 31.640625 + 3.515625 + 236.390625 + 135.140625 = 406.6875.
        assert_close(
            sums.sum_squared_subject_totals,
            406.6875,
            DIRECT_TOLERANCE,
            "Σ R²",
        );
        // Copy totals 15.5, 14.5, 16.5 minus 4 m = 15.5 give 0, −1, 1.
        let expected_copy_sums = [0.0, -1.0, 1.0];
        assert_eq!(sums.copy_sums.len(), 3);
        for (copy, (&actual, &expected)) in
            sums.copy_sums.iter().zip(&expected_copy_sums).enumerate()
        {
            assert_close(actual, expected, DIRECT_TOLERANCE, &format!("C_{copy}"));
        }
    }

    #[test]
    fn icc_sums_match_direct_double_loops() {
        // A table with a large common offset, where uncompensated raw sums
        // lose digits: the direct loops below centre each value exactly as
        // the definition reads, in their own order.
        let table: Vec<Vec<f64>> = (0..7)
            .map(|i| {
                (0..4)
                    .map(|j| 1.0e6 + (i as f64) * 0.37 + ((i * 3 + j * 5) % 7) as f64 * 0.011)
                    .collect()
            })
            .collect();
        let views: Vec<&[f64]> = table.iter().map(Vec::as_slice).collect();
        let sums = icc_sums(&views).expect("valid table");

        let (n, k) = (table.len(), table[0].len());
        let mut mean = 0.0;
        for row in &table {
            for &value in row {
                mean += value;
            }
        }
        mean /= (n * k) as f64;
        let (mut t, mut q, mut r2) = (0.0, 0.0, 0.0);
        let mut c = vec![0.0; k];
        for row in &table {
            let mut subject_total = 0.0;
            for (j, &value) in row.iter().enumerate() {
                let centred = value - sums.shift;
                t += centred;
                q += centred * centred;
                subject_total += centred;
                c[j] += centred;
            }
            r2 += subject_total * subject_total;
        }

        // Plain summation of 28 values near 1e6 has a relative error below
        // 28 ε ≈ 6e-15, so its mean is within 6e-9 of the exact mean.
        assert_close(sums.shift, mean, 1e-8, "shift");
        // Centred values are below 3 in size, so every sum is below 300 and
        // two summation orders agree to far better than 1e-10.
        assert_close(sums.sum, t, 1e-10, "T");
        assert_close(sums.sum_squares, q, 1e-10, "Q");
        assert_close(sums.sum_squared_subject_totals, r2, 1e-10, "Σ R²");
        assert_eq!(sums.copy_sums.len(), k);
        for (j, (&actual, &expected)) in sums.copy_sums.iter().zip(&c).enumerate() {
            assert_close(actual, expected, 1e-10, &format!("C_{j}"));
        }
        // The ANOVA identity Σ_j C_j = T = Σ_i R_i holds for any shift.
        let copy_total: f64 = sums.copy_sums.iter().sum();
        assert_close(copy_total, sums.sum, 1e-10, "Σ C_j − T");
    }

    #[test]
    fn icc_sums_constant_feature_is_zero() {
        // Every value equal: the shift is the value and every sum is exactly
        // 0, because each centred value is exactly 0.
        let table = [[2.5, 2.5], [2.5, 2.5], [2.5, 2.5]];
        let views: Vec<&[f64]> = table.iter().map(|row| row.as_slice()).collect();
        let sums = icc_sums(&views).expect("valid table");
        assert_eq!(sums.shift, 2.5);
        assert_eq!(sums.sum, 0.0);
        assert_eq!(sums.sum_squares, 0.0);
        assert_eq!(sums.sum_squared_subject_totals, 0.0);
        assert_eq!(sums.copy_sums, vec![0.0, 0.0]);
    }

    #[test]
    fn icc_sums_invalid_tables_are_rejected() {
        assert_eq!(icc_sums(&[]), Err(IccSumsError::NoSubjects));
        assert_eq!(
            icc_sums(&[&[1.0]]),
            Err(IccSumsError::TooFewCopies { copies: 1 })
        );
        assert_eq!(
            icc_sums(&[&[1.0, 2.0], &[1.0, 2.0, 3.0]]),
            Err(IccSumsError::RaggedRow {
                subject: 1,
                expected: 2,
                found: 3
            })
        );
        assert!(matches!(
            icc_sums(&[&[1.0, 2.0], &[f64::NAN, 2.0]]),
            Err(IccSumsError::NonFinite {
                subject: 1,
                copy: 0,
                ..
            })
        ));
    }
}
