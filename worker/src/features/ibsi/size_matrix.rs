//! Features shared by the IBSI matrices with grey level i as row and a size-like index j
//! as column: run length (GLRLM), zone size (GLSZM), zone distance (GLDZM) and
//! dependence count + 1 (NGLDM).
//!
//! With counts m_ij, N_s = Σ m_ij, row sums r_i = Σ_j m_ij, column sums c_j = Σ_i m_ij,
//! p_ij = m_ij / N_s and N_v the voxels behind the matrix, the 16 features, in output
//! order, are: Σ m_ij/j² / N_s (short), Σ j² m_ij / N_s (long), Σ m_ij/i² / N_s
//! (low grey level), Σ i² m_ij / N_s (high grey level), Σ m_ij/(i² j²) / N_s,
//! Σ i² m_ij/j² / N_s, Σ j² m_ij/i² / N_s, Σ i² j² m_ij / N_s, grey level non-uniformity
//! Σ r_i² / N_s and its normalised form / N_s², size non-uniformity Σ c_j² / N_s and
//! / N_s², percentage N_s / N_v, grey level variance Σ (i − μ_i)² p_ij with μ_i = Σ i p_ij,
//! size variance Σ (j − μ_j)² p_ij and size entropy −Σ p_ij log₂ p_ij. NGLDM adds the
//! energy Σ p_ij².

/// A grey level × size count matrix.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SizeMatrix {
    /// Counts, row-major: `counts[(i − 1) * columns + (j − 1)]`.
    pub counts: Vec<f64>,
    /// Number of columns (largest size index).
    pub columns: usize,
}

impl SizeMatrix {
    /// Returns an empty matrix with `rows` grey levels and `columns` sizes.
    pub fn zeros(rows: usize, columns: usize) -> Self {
        SizeMatrix {
            counts: vec![0.0; rows * columns],
            columns,
        }
    }

    /// Adds one entry for grey level `level` ≥ 1 and size `size` ≥ 1.
    pub fn add(&mut self, level: u32, size: usize) {
        let index = (level as usize - 1) * self.columns + (size - 1);
        self.counts[index] += 1.0;
    }

    /// Adds every count of `other`, which has as many rows; widens `self` if needed.
    pub fn merge(&mut self, other: &SizeMatrix) {
        let rows = self.counts.len() / self.columns.max(1);
        if other.columns > self.columns {
            let mut wider = SizeMatrix::zeros(rows, other.columns);
            for row in 0..rows {
                for column in 0..self.columns {
                    wider.counts[row * other.columns + column] =
                        self.counts[row * self.columns + column];
                }
            }
            *self = wider;
        }
        for row in 0..rows {
            for column in 0..other.columns {
                self.counts[row * self.columns + column] +=
                    other.counts[row * other.columns + column];
            }
        }
    }
}

/// Computes the 16 shared features and the energy, in the order of the module
/// documentation followed by the energy.
pub(super) fn features(matrix: &SizeMatrix, voxels: f64) -> [f64; 17] {
    let columns = matrix.columns;
    let total: f64 = matrix.counts.iter().sum();
    let mut f = [0.0; 17];
    if total == 0.0 {
        return f;
    }

    let rows = matrix.counts.len() / columns;
    let mut row_sums = vec![0.0; rows];
    let mut column_sums = vec![0.0; columns];
    let mut level_mean = 0.0;
    let mut size_mean = 0.0;
    for (index, &count) in matrix.counts.iter().enumerate() {
        let (row, column) = (index / columns, index % columns);
        if count == 0.0 {
            continue;
        }
        let (i, j) = ((row + 1) as f64, (column + 1) as f64);
        let (i2, j2) = (i * i, j * j);
        f[0] += count / j2;
        f[1] += count * j2;
        f[2] += count / i2;
        f[3] += count * i2;
        f[4] += count / (i2 * j2);
        f[5] += count * i2 / j2;
        f[6] += count * j2 / i2;
        f[7] += count * i2 * j2;
        row_sums[row] += count;
        column_sums[column] += count;
        let p = count / total;
        level_mean += i * p;
        size_mean += j * p;
        f[15] -= p * p.log2();
        f[16] += p * p;
    }

    for value in f.iter_mut().take(8) {
        *value /= total;
    }
    let row_square: f64 = row_sums.iter().map(|r| r * r).sum();
    let column_square: f64 = column_sums.iter().map(|c| c * c).sum();
    f[8] = row_square / total;
    f[9] = row_square / (total * total);
    f[10] = column_square / total;
    f[11] = column_square / (total * total);
    f[12] = total / voxels;

    for row in 0..rows {
        for column in 0..columns {
            let p = matrix.counts[row * columns + column] / total;
            f[13] += ((row + 1) as f64 - level_mean).powi(2) * p;
            f[14] += ((column + 1) as f64 - size_mean).powi(2) * p;
        }
    }
    f
}

/// Tags the first 16 features with a family's names.
pub(super) fn tag16(
    prefix: &str,
    suffix: &str,
    names: [&str; 16],
    values: [f64; 17],
) -> Vec<(String, f64)> {
    let mut first = [0.0; 16];
    first.copy_from_slice(&values[..16]);
    super::tagged(prefix, suffix, names, first)
}

impl super::aggregation::TextureMatrix for SizeMatrix {
    fn merge(&mut self, other: &Self) {
        SizeMatrix::merge(self, other);
    }

    fn is_empty(&self) -> bool {
        self.counts.iter().all(|&count| count == 0.0)
    }
}
