//! Grey level dependence matrix (GLDM) features.
//!
//! The features and their conventions follow PyRadiomics 3.1.4 (`radiomics.gldm` and the
//! `calculate_gldm` kernel of its C extension, PyPI package `pyradiomics-bhklab`) with default
//! settings. The input is the discretised ROI of [`discretize`](super::discretize). The tests
//! compare against reference values from that version and state how they were produced.
//!
//! Let:
//!
//! - **N_p** be the number of voxels in the ROI;
//! - **the neighbours** of a voxel be the voxels whose Chebyshev distance
//!   max(|Δi|, |Δj|, |Δk|) from it is one of the distances δ (`distances`), counted only when
//!   they lie inside the ROI. The default δ = [1] gives the 26 voxels around the centre;
//!   δ = [2] gives only the 98 voxels of the shell at distance 2, as PyRadiomics builds them;
//! - **α** be the dependence threshold (`alpha`): a neighbour with grey level j depends on a
//!   centre with grey level i when |i − j| ≤ α;
//! - **P(i, j)** be the number of ROI voxels with grey level i and j − 1 dependent neighbours,
//!   so that the dependence size j counts the centre voxel too (1 ≤ j ≤ 27 for δ = [1]);
//! - **i, j** run over the N_g grey levels and N_d dependence sizes present. PyRadiomics
//!   deletes the empty rows and columns of P but keeps each level's and size's own value, so
//!   an absent grey level changes no feature;
//! - **N_z** = Σ P(i, j) = N_p, the number of dependence zones (one per voxel);
//! - **p(i, j)** = P(i, j) / N_z;
//! - **P_g(i)** = Σ_j P(i, j) and **P_d(j)** = Σ_i P(i, j), the marginal counts;
//! - **μ_i** = Σ_i i·P_g(i) / N_z and **μ_j** = Σ_j j·P_d(j) / N_z;
//! - **ε** = 2.220446049250313 × 10⁻¹⁶, the f64 machine epsilon, which PyRadiomics adds
//!   inside the logarithm of DependenceEntropy.

use super::discretize::TextureInput;
use super::padded_grids::PaddedGrids;
use super::texture_angles::TextureAngles;

/// Feature names in output order, as PyRadiomics names them without the `original_gldm_`
/// prefix. The order is that of PyRadiomics' documentation, while its feature extractor
/// emits them sorted by name.
pub const FEATURE_NAMES: [&str; 14] = [
    "SmallDependenceEmphasis",
    "LargeDependenceEmphasis",
    "GrayLevelNonUniformity",
    "DependenceNonUniformity",
    "DependenceNonUniformityNormalized",
    "GrayLevelVariance",
    "DependenceVariance",
    "DependenceEntropy",
    "LowGrayLevelEmphasis",
    "HighGrayLevelEmphasis",
    "SmallDependenceLowGrayLevelEmphasis",
    "SmallDependenceHighGrayLevelEmphasis",
    "LargeDependenceLowGrayLevelEmphasis",
    "LargeDependenceHighGrayLevelEmphasis",
];

/// GLDM settings. The caller validates them: `alpha` finite and ≥ 0, `distances` non-empty
/// and each ≥ 1.
#[derive(Debug, Clone, PartialEq)]
pub struct GldmSettings {
    /// Dependence threshold α in grey levels (PyRadiomics `gldm_a`, default 0).
    pub alpha: f64,
    /// Chebyshev distances δ of the neighbours, in voxels (PyRadiomics `distances`, default
    /// [1]).
    pub distances: Vec<u32>,
}

impl Default for GldmSettings {
    /// Returns PyRadiomics' defaults: α = 0, δ = [1].
    fn default() -> Self {
        GldmSettings {
            alpha: 0.0,
            distances: vec![1],
        }
    }
}

/// Computes PyRadiomics' 14 default GLDM features of one discretised ROI.
///
/// Returns `(name, value)` pairs in the order of [`FEATURE_NAMES`].
///
/// Each feature, in output order (IBSI names and codes from the IBSI reference manual, where
/// this matrix is the "neighbouring grey level dependence matrix"):
///
/// 1. **SmallDependenceEmphasis** = Σ_j P_d(j) / j² / N_z. IBSI "low dependence emphasis"
///    (SODN). Unit: voxels⁻².
/// 2. **LargeDependenceEmphasis** = Σ_j P_d(j)·j² / N_z. IBSI "high dependence emphasis"
///    (IMOQ). Unit: voxels².
/// 3. **GrayLevelNonUniformity** = Σ_i P_g(i)² / N_z. IBSI "grey level non-uniformity"
///    (FP8K). Unit: voxels.
/// 4. **DependenceNonUniformity** = Σ_j P_d(j)² / N_z. IBSI "dependence count
///    non-uniformity" (Z87G). Unit: voxels.
/// 5. **DependenceNonUniformityNormalized** = Σ_j P_d(j)² / N_z². IBSI "normalised dependence
///    count non-uniformity" (OKJI). Dimensionless, between 1/N_d and 1.
/// 6. **GrayLevelVariance** = Σ_i (P_g(i) / N_z)·(i − μ_i)². IBSI "grey level variance"
///    (1PFV). Unit: grey levels².
/// 7. **DependenceVariance** = Σ_j (P_d(j) / N_z)·(j − μ_j)². IBSI "dependence count
///    variance" (DNX2). Unit: voxels².
/// 8. **DependenceEntropy** = −Σ_i Σ_j p(i, j)·log₂(p(i, j) + ε). IBSI "dependence count
///    entropy" (FCBV), which has no ε. Unit: bits.
/// 9. **LowGrayLevelEmphasis** = Σ_i P_g(i) / i² / N_z. IBSI "low grey level count emphasis"
///    (TL9H). Dimensionless.
/// 10. **HighGrayLevelEmphasis** = Σ_i P_g(i)·i² / N_z. IBSI "high grey level count
///     emphasis" (OAE7). Dimensionless.
/// 11. **SmallDependenceLowGrayLevelEmphasis** = Σ_i Σ_j P(i, j) / (i²·j²) / N_z. IBSI "low
///     dependence low grey level emphasis" (EQ3F). Unit: voxels⁻².
/// 12. **SmallDependenceHighGrayLevelEmphasis** = Σ_i Σ_j P(i, j)·i² / j² / N_z. IBSI "low
///     dependence high grey level emphasis" (JA6D). Unit: voxels⁻².
/// 13. **LargeDependenceLowGrayLevelEmphasis** = Σ_i Σ_j P(i, j)·j² / i² / N_z. IBSI "high
///     dependence low grey level emphasis" (NBZI). Unit: voxels².
/// 14. **LargeDependenceHighGrayLevelEmphasis** = Σ_i Σ_j P(i, j)·i²·j² / N_z. IBSI "high
///     dependence high grey level emphasis" (9QMG). Unit: voxels².
///
/// A flat ROI (one grey level) needs no special case: GrayLevelVariance is 0 and every other
/// feature is finite.
///
/// PyRadiomics 3.1.4 leaves out three IBSI features of this matrix. Normalised grey level
/// non-uniformity (5SPA) equals first-order Uniformity here, dependence count percentage
/// (6XV8) is always 1 because N_z = N_p, and dependence count energy (CAS9) is missing.
///
/// Deviations from PyRadiomics 3.1.4:
///
/// - PyRadiomics' C extension reads `gldm_a` as an integer and raises a TypeError for a
///   non-integer value. This function accepts any α. Grey levels are integers, so α acts as
///   ⌊α⌋. A negative or NaN α makes no neighbour dependent.
/// - A distance listed twice counts its neighbours once. A distance of 0 adds no neighbour.
/// - An empty ROI returns NaN for every feature instead of raising an error.
pub fn compute(input: &TextureInput, settings: &GldmSettings) -> Vec<(&'static str, f64)> {
    compute_with_angles(input, settings, &TextureAngles::default())
}

/// Computes the GLDM features as [`compute`] does, with the neighbours of `angles`: under
/// force2D only those in the voxel's slice (8 at distance 1), as in PyRadiomics. The
/// weighting norm does not apply to the GLDM and is ignored.
pub fn compute_with_angles(
    input: &TextureInput,
    settings: &GldmSettings,
    angles: &TextureAngles,
) -> Vec<(&'static str, f64)> {
    compute_with_grids(&mut PaddedGrids::new(input), settings, angles)
}

/// Computes the GLDM features as [`compute_with_angles`] does, on the shared grids of one
/// texture input.
pub(crate) fn compute_with_grids(
    grids: &mut PaddedGrids,
    settings: &GldmSettings,
    angles: &TextureAngles,
) -> Vec<(&'static str, f64)> {
    let matrix = dependence_matrix_with_angles(grids, settings, angles);
    matrix_features(&matrix)
}

/// The GLDM as counts, with one row per grey level present and one column per dependence
/// size 1..=width.
#[derive(Debug, Clone, PartialEq)]
struct DependenceMatrix {
    /// Grey level i of each row, ascending.
    levels: Vec<u32>,
    /// P(i, j) at index row·width + (j − 1), row-major with shape [levels.len(), width].
    counts: Vec<u64>,
    /// Number of columns: the neighbour count plus one.
    width: usize,
}

/// Builds the GLDM: counts each voxel's dependent neighbours, then tallies the ROI voxels.
///
/// The levels come from the shared
/// [`PaddedLevels`](super::discretize::PaddedLevels) grid whose border is as wide as the
/// longest offset, so each neighbour is one precomputed linear offset away. The counting is
/// shaped for vectorisation: for each offset o it compares the buffer with itself shifted by
/// o, two contiguous slices, and adds the result to a per-voxel counter, instead of
/// gathering 26 scattered neighbours per voxel. It runs on blocks of [`BLOCK_VOXELS`] voxels
/// so that the counters of a block stay in the L1 cache across all offsets. Voxels outside
/// the ROI get counts too, which the tally ignores. For the default α < 1 the test is
/// equality of the renumbered levels: the centre of an ROI voxel is never 0, so equality
/// also rules out neighbours outside the ROI. For α ≥ 1 the test runs on the grey levels.
fn dependence_matrix_with_angles(
    grids: &mut PaddedGrids,
    settings: &GldmSettings,
    angle_settings: &TextureAngles,
) -> DependenceMatrix {
    let box_shape: [usize; 3] = grids.input().levels.dim().into();
    // PyRadiomics' angles are one direction of each ± pair, but the neighbourhood needs both.
    let angles = angle_settings.offsets(&settings.distances, box_shape);
    let padding = angles
        .iter()
        .flatten()
        .map(|component| component.unsigned_abs() as usize)
        .max()
        .unwrap_or(0);
    let grid = grids.get(padding);
    let offsets: Vec<isize> = angles
        .iter()
        .flat_map(|&angle| {
            let offset = grid.linear_offset(angle);
            [offset, -offset]
        })
        .collect();

    let dependent = match max_dependent_difference(settings.alpha) {
        None => vec![0; grid.data.len()],
        Some(0) => count_matching_neighbours(&grid.data, &offsets, |centre, neighbour| {
            centre == neighbour
        }),
        Some(limit) => {
            let grey_levels: Vec<u32> = grid
                .data
                .iter()
                .map(|&level| match level {
                    0 => 0,
                    level => grid.present_levels[level as usize - 1],
                })
                .collect();
            count_matching_neighbours(&grey_levels, &offsets, |centre, neighbour| {
                neighbour != 0 && neighbour.abs_diff(centre) <= limit
            })
        }
    };

    // Column j − 1 = number of dependent neighbours (PyRadiomics' matrix index).
    let width = offsets.len() + 1;
    let mut counts = vec![0_u64; grid.present_levels.len() * width];
    for (&centre, &dependent) in grid.data.iter().zip(&dependent) {
        if centre != 0 {
            counts[(centre as usize - 1) * width + dependent as usize] += 1;
        }
    }
    DependenceMatrix {
        levels: grid.present_levels.clone(),
        counts,
        width,
    }
}

/// Builds the GLDM with PyRadiomics' default 3-D neighbourhood.
#[cfg(test)]
fn dependence_matrix(input: &TextureInput, settings: &GldmSettings) -> DependenceMatrix {
    dependence_matrix_with_angles(
        &mut PaddedGrids::new(input),
        settings,
        &TextureAngles::default(),
    )
}

/// Voxels per block of [`count_matching_neighbours`]: 16 KiB of u32 counters, which fit in
/// the L1 data cache with room for the level slices.
const BLOCK_VOXELS: usize = 4096;

/// Returns, for each voxel of `levels`, the number of `offsets` whose neighbour passes
/// `test(centre, neighbour)`.
///
/// Voxels whose neighbour at some offset falls outside `levels` skip that offset. Within the
/// padded grid that happens only to border voxels, never to an ROI voxel.
fn count_matching_neighbours(
    levels: &[u32],
    offsets: &[isize],
    test: impl Fn(u32, u32) -> bool,
) -> Vec<u32> {
    let len = levels.len();
    let mut counts = vec![0_u32; len];
    for block_start in (0..len).step_by(BLOCK_VOXELS) {
        let block_end = (block_start + BLOCK_VOXELS).min(len);
        for &offset in offsets {
            // The voxels x of the block whose neighbour x + offset lies in 0..len.
            let start = block_start.max(offset.min(0).unsigned_abs());
            let end = block_end.min(len.saturating_sub(offset.max(0) as usize));
            if start >= end {
                continue;
            }
            let neighbour_start = start.wrapping_add_signed(offset);
            let centres = &levels[start..end];
            let neighbours = &levels[neighbour_start..neighbour_start + (end - start)];
            for ((count, &centre), &neighbour) in
                counts[start..end].iter_mut().zip(centres).zip(neighbours)
            {
                *count += u32::from(test(centre, neighbour));
            }
        }
    }
    counts
}

/// Returns the largest grey-level difference that counts as dependent, ⌊α⌋, or `None` when
/// no difference does (α < 0 or NaN).
fn max_dependent_difference(alpha: f64) -> Option<u32> {
    if alpha >= 0.0 {
        // `as` saturates, so α ≥ 2³² behaves like an unlimited threshold.
        Some(alpha.floor() as u32)
    } else {
        None
    }
}

/// Evaluates the 14 features on a dependence matrix.
fn matrix_features(matrix: &DependenceMatrix) -> Vec<(&'static str, f64)> {
    let width = matrix.width;

    // Marginal counts P_g(i) per row and P_d(j) at index j − 1.
    let mut level_counts = vec![0_u64; matrix.levels.len()];
    let mut size_counts = vec![0_u64; width];
    for (row, level_count) in matrix.counts.chunks_exact(width).zip(&mut level_counts) {
        for (&count, size_count) in row.iter().zip(&mut size_counts) {
            *level_count += count;
            *size_count += count;
        }
    }
    let zone_count: u64 = level_counts.iter().sum();
    if zone_count == 0 {
        return FEATURE_NAMES.iter().map(|&name| (name, f64::NAN)).collect();
    }
    let n_z = zone_count as f64;

    let by_level: Vec<(f64, f64)> = matrix
        .levels
        .iter()
        .zip(&level_counts)
        .map(|(&level, &count)| (f64::from(level), count as f64))
        .collect();
    let by_size: Vec<(f64, f64)> = size_counts
        .iter()
        .enumerate()
        .filter(|&(_, &count)| count > 0)
        .map(|(index, &count)| ((index + 1) as f64, count as f64))
        .collect();
    let by_level = Marginal::new(&by_level, n_z);
    let by_size = Marginal::new(&by_size, n_z);

    // Joint sums over the non-empty cells P(i, j).
    let mut entropy = 0.0;
    let mut small_low = 0.0;
    let mut small_high = 0.0;
    let mut large_low = 0.0;
    let mut large_high = 0.0;
    for (&level, row) in matrix.levels.iter().zip(matrix.counts.chunks_exact(width)) {
        let level = f64::from(level);
        let level_square = level * level;
        for (size_index, &count) in row.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let size = (size_index + 1) as f64;
            let size_square = size * size;
            let count = count as f64;
            let probability = count / n_z;
            entropy -= probability * (probability + f64::EPSILON).log2();
            small_low += count / (level_square * size_square);
            small_high += count * level_square / size_square;
            large_low += count * size_square / level_square;
            large_high += count * (level_square * size_square);
        }
    }

    vec![
        ("SmallDependenceEmphasis", by_size.inverse_square / n_z),
        ("LargeDependenceEmphasis", by_size.square / n_z),
        ("GrayLevelNonUniformity", by_level.count_square / n_z),
        ("DependenceNonUniformity", by_size.count_square / n_z),
        (
            "DependenceNonUniformityNormalized",
            by_size.count_square / (n_z * n_z),
        ),
        ("GrayLevelVariance", by_level.variance),
        ("DependenceVariance", by_size.variance),
        ("DependenceEntropy", entropy),
        ("LowGrayLevelEmphasis", by_level.inverse_square / n_z),
        ("HighGrayLevelEmphasis", by_level.square / n_z),
        ("SmallDependenceLowGrayLevelEmphasis", small_low / n_z),
        ("SmallDependenceHighGrayLevelEmphasis", small_high / n_z),
        ("LargeDependenceLowGrayLevelEmphasis", large_low / n_z),
        ("LargeDependenceHighGrayLevelEmphasis", large_high / n_z),
    ]
}

/// Sums over one marginal of the matrix, x being the grey level or the dependence size and
/// c(x) its count.
struct Marginal {
    /// Σ c(x) / x².
    inverse_square: f64,
    /// Σ c(x)·x².
    square: f64,
    /// Σ c(x)².
    count_square: f64,
    /// Σ (c(x) / N_z)·(x − μ)², with μ = Σ x·c(x) / N_z.
    variance: f64,
}

impl Marginal {
    /// Sums over the `(x, c(x))` pairs of the values present.
    fn new(counts: &[(f64, f64)], n_z: f64) -> Self {
        let mean: f64 = counts.iter().map(|&(x, count)| count / n_z * x).sum();
        let mut sums = Marginal {
            inverse_square: 0.0,
            square: 0.0,
            count_square: 0.0,
            variance: 0.0,
        };
        for &(x, count) in counts {
            let deviation = x - mean;
            sums.inverse_square += count / (x * x);
            sums.square += count * (x * x);
            sums.count_square += count * count;
            sums.variance += count / n_z * (deviation * deviation);
        }
        sums
    }
}

/// Small grey-level volumes shared by the GLDM, NGTDM and GLSZM tests. The PyRadiomics
/// reference values in those tests were computed on the same arrays, rebuilt in Python from
/// these formulas.
#[cfg(test)]
pub(crate) mod test_volumes {
    use ndarray::Array3;

    /// Returns a 6 × 5 × 4 (i × j × k) box whose voxel is inside the ROI when
    /// (i + 2j + 3k) mod 5 ≠ 0, with levels {1, 2, 3, 6, 7}, so levels 4 and 5 are empty.
    pub(crate) fn scattered_levels() -> Array3<u32> {
        Array3::from_shape_fn((6, 5, 4), |(i, j, k)| {
            if (i + 2 * j + 3 * k) % 5 == 0 {
                return 0;
            }
            let level = (i * 7 + j * 11 + k * 13 + i * j * k) % 5 + 1;
            if level < 4 {
                level as u32
            } else {
                level as u32 + 2
            }
        })
    }

    /// Returns a 7 × 7 × 5 ball of radius √10 around voxel (3, 3, 2) with 2 × 2 × 2 blocks
    /// of levels 1 to 3, so that zones and dependences are larger than in
    /// `scattered_levels`.
    pub(crate) fn blocky_levels() -> Array3<u32> {
        Array3::from_shape_fn((7, 7, 5), |(i, j, k)| {
            let (di, dj, dk) = (i as i64 - 3, j as i64 - 3, k as i64 - 2);
            if di * di + dj * dj + dk * dk > 10 {
                return 0;
            }
            ((i / 2 + (j / 2) * 2 + k / 2) % 3 + 1) as u32
        })
    }

    /// Returns a one-voxel-thick 6 × 5 × 1 plane with levels 1 to 4.
    pub(crate) fn plane_levels() -> Array3<u32> {
        Array3::from_shape_fn((6, 5, 1), |(i, j, _)| {
            ((i * 3 + j * 5 + i * j) % 4 + 1) as u32
        })
    }

    /// Returns a 4 × 2 × 2 box whose half i < 2 has level 1 and half i ≥ 2 level 2.
    pub(crate) fn two_halves_levels() -> Array3<u32> {
        Array3::from_shape_fn((4, 2, 2), |(i, _, _)| if i < 2 { 1 } else { 2 })
    }
}

#[cfg(test)]
mod tests;
