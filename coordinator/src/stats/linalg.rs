//! Dense Cholesky solve for the small symmetric positive definite systems of
//! the Newton steps (one row and column per model coefficient).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// A pivot at or below this fraction of its original diagonal entry marks the
/// matrix as numerically singular. In an unpenalised fit a constant or
/// duplicated feature column leaves a pivot of rounding size, about 1e-16 of
/// its diagonal, while ill-conditioned but regular systems with a condition
/// number up to about 1e12 pass.
const RELATIVE_PIVOT_TOLERANCE: f64 = 1e-12;

/// Solves `a · x = b` for a symmetric positive definite `a` (shape k×k) by
/// the Cholesky factorisation `a = L Lᵀ`.
///
/// Only the lower triangle of `a` is read. Returns `None` when a pivot is not
/// finite or falls to `RELATIVE_PIVOT_TOLERANCE` times its diagonal entry or
/// below, that is, when `a` is singular or indefinite to working precision.
/// The caller guarantees that `a` is square and `b` has one entry per row.
pub(crate) fn cholesky_solve(a: ArrayView2<f64>, b: ArrayView1<f64>) -> Option<Array1<f64>> {
    let size = a.nrows();
    debug_assert_eq!(a.ncols(), size);
    debug_assert_eq!(b.len(), size);

    // Factorise: lower[i][j] for j <= i, column by column.
    let mut lower = Array2::<f64>::zeros((size, size));
    for j in 0..size {
        let mut pivot = a[[j, j]];
        for k in 0..j {
            pivot -= lower[[j, k]] * lower[[j, k]];
        }
        let diagonal = a[[j, j]];
        if !pivot.is_finite() || diagonal <= 0.0 || pivot <= RELATIVE_PIVOT_TOLERANCE * diagonal {
            return None;
        }
        let root = pivot.sqrt();
        lower[[j, j]] = root;
        for i in (j + 1)..size {
            let mut value = a[[i, j]];
            for k in 0..j {
                value -= lower[[i, k]] * lower[[j, k]];
            }
            lower[[i, j]] = value / root;
        }
    }

    // Forward substitution: L · z = b.
    let mut solution = b.to_owned();
    for i in 0..size {
        let mut value = solution[i];
        for k in 0..i {
            value -= lower[[i, k]] * solution[k];
        }
        solution[i] = value / lower[[i, i]];
    }

    // Back substitution: Lᵀ · x = z.
    for i in (0..size).rev() {
        let mut value = solution[i];
        for k in (i + 1)..size {
            value -= lower[[k, i]] * solution[k];
        }
        solution[i] = value / lower[[i, i]];
    }
    Some(solution)
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn cholesky_solve_recovers_known_solution() {
        let a = array![[4.0, 2.0, 0.4], [2.0, 5.0, 1.0], [0.4, 1.0, 3.0]];
        let expected = array![1.0, -2.0, 0.5];
        let b = a.dot(&expected);
        let solution = cholesky_solve(a.view(), b.view()).unwrap();
        for (found, wanted) in solution.iter().zip(&expected) {
            assert!((found - wanted).abs() < 1e-14, "{solution:?}");
        }
    }

    #[test]
    fn cholesky_solve_rejects_singular_matrix() {
        // The second row is twice the first.
        let a = array![[1.0, 2.0], [2.0, 4.0]];
        assert!(cholesky_solve(a.view(), array![1.0, 2.0].view()).is_none());
    }

    #[test]
    fn cholesky_solve_rejects_indefinite_matrix() {
        let a = array![[1.0, 3.0], [3.0, 1.0]];
        assert!(cholesky_solve(a.view(), array![1.0, 1.0].view()).is_none());
    }

    #[test]
    fn cholesky_solve_of_empty_system() {
        let a = Array2::<f64>::zeros((0, 0));
        let solution = cholesky_solve(a.view(), Array1::zeros(0).view()).unwrap();
        assert!(solution.is_empty());
    }
}
