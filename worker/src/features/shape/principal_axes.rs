//! Principal component analysis of the ROI's voxel centres.

use super::PaddedMask;

/// Returns the eigenvalues, ascending and in mm², of the population covariance matrix
/// (divided by N_v, not N_v − 1) of the physical coordinates of the inside voxel centres.
///
/// The covariance is assembled from exact integer sums of voxel indices, so an axis along
/// which all voxels share one index gets an exactly zero row and column, and so an exactly
/// zero eigenvalue. PyRadiomics centres float coordinates first and can leave about 10⁻³⁰
/// there. Eigenvalues below 0 can only come from rounding of a positive semi-definite
/// matrix and are returned as 0; PyRadiomics does the same for values above −10⁻¹⁰ and
/// returns NaN axis lengths below that.
pub(super) fn covariance_eigenvalues(grid: &PaddedMask, spacing: [f64; 3]) -> [f64; 3] {
    let mut count: i128 = 0;
    let mut sums = [0_i128; 3];
    let mut products = [[0_i128; 3]; 3];
    let [size_i, size_j, size_k] = grid.dims;
    for k in 0..size_k {
        for j in 0..size_j {
            for i in 0..size_i {
                if !grid.is_inside([i, j, k]) {
                    continue;
                }
                let index = [i as i128, j as i128, k as i128];
                count += 1;
                for a in 0..3 {
                    sums[a] += index[a];
                    for b in a..3 {
                        products[a][b] += index[a] * index[b];
                    }
                }
            }
        }
    }
    if count == 0 {
        return [0.0; 3];
    }

    let voxels = count as f64;
    let mut covariance = [[0.0; 3]; 3];
    for a in 0..3 {
        for b in a..3 {
            // N² · cov = N · Σ xa·xb − Σ xa · Σ xb, exact in i128 for up to 2⁴⁰ voxels with
            // indices below 2²⁰.
            let scaled = count * products[a][b] - sums[a] * sums[b];
            let value = scaled as f64 * spacing[a] * spacing[b] / voxels / voxels;
            covariance[a][b] = value;
            covariance[b][a] = value;
        }
    }
    symmetric_eigenvalues(covariance).map(|eigenvalue| eigenvalue.max(0.0))
}

/// Returns the eigenvalues of a symmetric 3 × 3 matrix, ascending, by cyclic Jacobi
/// rotations.
fn symmetric_eigenvalues(mut matrix: [[f64; 3]; 3]) -> [f64; 3] {
    // Cyclic Jacobi converges quadratically, so a 3 × 3 matrix needs a few sweeps. The
    // limit only bounds the loop for NaN input.
    const MAX_SWEEPS: usize = 50;
    for _ in 0..MAX_SWEEPS {
        if matrix[0][1] == 0.0 && matrix[0][2] == 0.0 && matrix[1][2] == 0.0 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            let off_diagonal = matrix[p][q];
            if off_diagonal == 0.0 {
                continue;
            }
            let (diagonal_p, diagonal_q) = (matrix[p][p], matrix[q][q]);
            // An element too small to change either diagonal entry is dropped.
            let negligible = 100.0 * off_diagonal.abs();
            if diagonal_p.abs() + negligible == diagonal_p.abs()
                && diagonal_q.abs() + negligible == diagonal_q.abs()
            {
                matrix[p][q] = 0.0;
                matrix[q][p] = 0.0;
                continue;
            }
            let theta = (diagonal_q - diagonal_p) / (2.0 * off_diagonal);
            let tangent = if theta.abs() > 1e150 {
                0.5 / theta
            } else {
                theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
            };
            let cosine = 1.0 / (tangent * tangent + 1.0).sqrt();
            let sine = tangent * cosine;
            matrix[p][p] = diagonal_p - tangent * off_diagonal;
            matrix[q][q] = diagonal_q + tangent * off_diagonal;
            matrix[p][q] = 0.0;
            matrix[q][p] = 0.0;
            let r = 3 - p - q;
            let (element_rp, element_rq) = (matrix[r][p], matrix[r][q]);
            matrix[r][p] = cosine * element_rp - sine * element_rq;
            matrix[p][r] = matrix[r][p];
            matrix[r][q] = sine * element_rp + cosine * element_rq;
            matrix[q][r] = matrix[r][q];
        }
    }
    let mut eigenvalues = [matrix[0][0], matrix[1][1], matrix[2][2]];
    eigenvalues.sort_by(f64::total_cmp);
    eigenvalues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_known_eigenvalues() {
        // Eigenvalues of [[2, 1, 0], [1, 2, 0], [0, 0, 5]] are 1, 3 and 5.
        let eigenvalues =
            symmetric_eigenvalues([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 5.0]]);
        for (actual, expected) in eigenvalues.iter().zip([1.0, 3.0, 5.0]) {
            assert!((actual - expected).abs() < 1e-14, "{eigenvalues:?}");
        }
    }

    #[test]
    fn jacobi_handles_dense_matrix() {
        // [[4, 1, 2], [1, 3, 0], [2, 0, 5]]: trace 12, determinant 4·15 − 1·5 + 2·(−6) = 43.
        let eigenvalues =
            symmetric_eigenvalues([[4.0, 1.0, 2.0], [1.0, 3.0, 0.0], [2.0, 0.0, 5.0]]);
        let trace: f64 = eigenvalues.iter().sum();
        let determinant: f64 = eigenvalues.iter().product();
        assert!((trace - 12.0).abs() < 1e-13, "{eigenvalues:?}");
        assert!((determinant - 43.0).abs() < 1e-12, "{eigenvalues:?}");
        assert!(eigenvalues[0] <= eigenvalues[1], "{eigenvalues:?}");
        assert!(eigenvalues[1] <= eigenvalues[2], "{eigenvalues:?}");
    }

    #[test]
    fn jacobi_returns_zero_matrix_unchanged() {
        assert_eq!(symmetric_eigenvalues([[0.0; 3]; 3]), [0.0; 3]);
    }
}
