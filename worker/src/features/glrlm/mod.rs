//! Grey level run length matrix (GLRLM) features.
//!
//! The features and their conventions follow PyRadiomics 3.1.4 (`radiomics.glrlm`, PyPI
//! package `pyradiomics-bhklab`, numpy 2.4.6) with default settings: 3-D, the 13 angles of
//! distance 1, no distance weighting. Features are computed on the matrix of each angle
//! separately and then averaged over the angles, IBSI aggregation "3D, averaged" (ITBB). The
//! tests compare against reference values from that version and state how they were
//! produced.
//!
//! Let:
//!
//! - **the angles** be the 13 neighbour offsets (di, dj, dk) of PyRadiomics at Chebyshev
//!   distance 1, one of each ± pair;
//! - **a run** along an angle be a maximal sequence of ROI voxels with the same grey level,
//!   each one step of the offset after the previous, and its **length** j the number of its
//!   voxels;
//! - **P(i, j)** be the number of runs of grey level i and length j along one angle;
//! - **i** run over the grey levels present in the ROI, with their values from the
//!   discretisation, and **j** over 1 … L, L being the largest extent of the ROI's bounding
//!   box;
//! - **N_r** = Σ P(i, j), the number of runs along the angle;
//! - **N_p** = Σ j·P(i, j), the number of ROI voxels (each belongs to one run per angle);
//! - **p(i, j)** = P(i, j) / N_r;
//! - **p_g(i)** = Σ_j P(i, j) and **p_r(j)** = Σ_i P(i, j), the run counts per grey level and
//!   per length;
//! - **ε** = 2.220446049250313 × 10⁻¹⁶, the f64 machine epsilon, which PyRadiomics adds
//!   inside the logarithm of RunEntropy.
//!
//! An angle with N_r = 0 is left out of the average. PyRadiomics 3.1.4 also empties an angle
//! when no line of the bounding box along it contains more than one ROI voxel, as happens for
//! the 9 angles that cross an ROI one voxel thick, and so does this module. Every feature is
//! computed per angle, and the output is the mean over the remaining angles (numpy's
//! `nanmean`, with its rounding).

mod matrix;

use crate::features::discretize::{TextureInput, nan_mean};
use crate::features::padded_grids::PaddedGrids;
use crate::features::texture_angles::TextureAngles;

use matrix::{RunLengthCounts, count_runs};

/// Feature names in output order, as PyRadiomics names them without the `original_glrlm_`
/// prefix. PyRadiomics 3.1.4 enables all 16 by default and outputs them in this alphabetical
/// order.
pub const FEATURE_NAMES: [&str; 16] = [
    "GrayLevelNonUniformity",
    "GrayLevelNonUniformityNormalized",
    "GrayLevelVariance",
    "HighGrayLevelRunEmphasis",
    "LongRunEmphasis",
    "LongRunHighGrayLevelEmphasis",
    "LongRunLowGrayLevelEmphasis",
    "LowGrayLevelRunEmphasis",
    "RunEntropy",
    "RunLengthNonUniformity",
    "RunLengthNonUniformityNormalized",
    "RunPercentage",
    "RunVariance",
    "ShortRunEmphasis",
    "ShortRunHighGrayLevelEmphasis",
    "ShortRunLowGrayLevelEmphasis",
];

/// Computes PyRadiomics' 16 GLRLM features of one discretised ROI.
///
/// Returns `(name, value)` pairs in the order of [`FEATURE_NAMES`]. If every angle is empty,
/// which needs an ROI without two voxels on any line of the 13 directions, every feature is
/// NaN, as in PyRadiomics.
///
/// Each feature, in output order (IBSI names and codes from the IBSI reference manual; units
/// in grey levels, "GL", and voxels):
///
/// 1. **GrayLevelNonUniformity** = Σ_i p_g(i)² / N_r. IBSI "grey level non-uniformity"
///    (R5YN). Unit: runs. Small when runs spread evenly over the grey levels.
/// 2. **GrayLevelNonUniformityNormalized** = Σ_i p_g(i)² / N_r². IBSI "normalised grey level
///    non-uniformity" (OVBL). Dimensionless, in (0, 1].
/// 3. **GrayLevelVariance** = Σ (i − μ_i)²·p(i, j) with μ_i = Σ i·p(i, j). IBSI "grey level
///    variance" (8CE5). Unit: GL².
/// 4. **HighGrayLevelRunEmphasis** = Σ_i p_g(i)·i² / N_r. IBSI "high grey level run emphasis"
///    (G3QZ). Unit: GL².
/// 5. **LongRunEmphasis** = Σ_j p_r(j)·j² / N_r. IBSI "long runs emphasis" (W4KF).
///    Unit: voxels². Large for coarse texture.
/// 6. **LongRunHighGrayLevelEmphasis** = Σ P(i, j)·j²·i² / N_r. IBSI "long run high grey level
///    emphasis" (3KUM). Unit: GL²·voxels².
/// 7. **LongRunLowGrayLevelEmphasis** = Σ P(i, j)·j² / i² / N_r. IBSI "long run low grey
///    level emphasis" (IVPO). Unit: voxels²/GL².
/// 8. **LowGrayLevelRunEmphasis** = Σ_i p_g(i) / i² / N_r. IBSI "low grey level run emphasis"
///    (V3SW). Unit: GL⁻².
/// 9. **RunEntropy** = −Σ p(i, j)·log₂(p(i, j) + ε). IBSI "run entropy" (HJ9O), which has no
///    ε. Unit: bits.
/// 10. **RunLengthNonUniformity** = Σ_j p_r(j)² / N_r. IBSI "run length non-uniformity"
///     (W92Y). Unit: runs.
/// 11. **RunLengthNonUniformityNormalized** = Σ_j p_r(j)² / N_r². IBSI "normalised run length
///     non-uniformity" (IC23). Dimensionless, in (0, 1].
/// 12. **RunPercentage** = N_r / N_p. IBSI "run percentage" (9ZK5), which divides by the
///     ROI's voxel count, the same number here. Dimensionless, in [1/N_p, 1]: 1 when every
///     run has length 1.
/// 13. **RunVariance** = Σ (j − μ_j)²·p(i, j) with μ_j = Σ j·p(i, j). IBSI "run length
///     variance" (SXLW). Unit: voxels².
/// 14. **ShortRunEmphasis** = Σ_j p_r(j) / j² / N_r. IBSI "short runs emphasis" (22OV).
///     Unit: voxels⁻². Large for fine texture.
/// 15. **ShortRunHighGrayLevelEmphasis** = Σ P(i, j)·i² / j² / N_r. IBSI "short run high grey
///     level emphasis" (GD3A). Unit: GL²/voxels².
/// 16. **ShortRunLowGrayLevelEmphasis** = Σ P(i, j) / (i²·j²) / N_r. IBSI "short run low grey
///     level emphasis" (HTZT). Unit: GL⁻²·voxels⁻².
///
/// A flat ROI (one grey level) needs no special case: GrayLevelNonUniformityNormalized is 1,
/// GrayLevelVariance 0, and the run-length features describe the ROI's shape.
///
/// This function uses PyRadiomics' default angles: 3-D, averaged.
/// [`compute_with_angles`] adds force2D and distance weighting (`weightingNorm`).
///
/// Deviation from IBSI: the emptied angles described in the module documentation. IBSI
/// keeps an angle across a one-voxel-thick ROI, with all runs of length 1.
///
/// Cost: with G grey levels present and L the largest extent of the ROI's bounding box, the
/// counts take 13·G·L·8 bytes (0.7 MB for G = 50 and L = 128). Callers bound G through the
/// `max_levels` argument of [`discretize`](crate::features::discretize::discretize).
///
/// References: Galloway MM. Texture analysis using gray level run lengths. Computer Graphics
/// and Image Processing 1975;4(2):172–179. Zwanenburg A et al. The Image Biomarker
/// Standardization Initiative. Radiology 2020;295(2):328–338.
pub fn compute(input: &TextureInput) -> Vec<(&'static str, f64)> {
    compute_with_angles(input, &TextureAngles::default())
}

/// Computes the GLRLM features as [`compute`] does, with the angles of `angles`: only the
/// in-plane angles under force2D, and with a weighting norm one merged matrix instead of
/// the average over the angles (see [`texture_angles`](crate::features::texture_angles)).
///
/// The merged matrix is Σ_a w_a·P_a over the angles, after the angles that cross the ROI
/// one voxel at a time have been emptied. N_r, N_p and every feature are computed once on
/// it, so with a weight other than 1, N_r and N_p are weighted counts.
pub fn compute_with_angles(
    input: &TextureInput,
    angles: &TextureAngles,
) -> Vec<(&'static str, f64)> {
    compute_with_grids(&mut PaddedGrids::new(input), angles)
}

/// Computes the GLRLM features as [`compute_with_angles`] does, on the shared grids of one
/// texture input.
pub(crate) fn compute_with_grids(
    grids: &mut PaddedGrids,
    angles: &TextureAngles,
) -> Vec<(&'static str, f64)> {
    let shape: [usize; 3] = grids.input().levels.dim().into();
    let spacing = grids.input().spacing;
    let offsets = angles.offsets(&[1], shape);
    let padded = grids.get(1);
    let max_run = shape.into_iter().max().unwrap_or(0);
    let runs = count_runs(padded, &offsets, max_run);
    match angles.weighting {
        None => features_from_runs(&runs, &padded.present_levels, offsets.len()),
        Some(norm) => {
            let grey_levels = grey_level_values(&padded.present_levels);
            let mut merged = vec![0.0; runs.levels * runs.max_run];
            for (angle, &offset) in offsets.iter().enumerate() {
                let weight = norm.run_length_weight(offset, spacing);
                for (sum, &count) in merged.iter_mut().zip(runs.angle(angle)) {
                    *sum += count as f64 * weight;
                }
            }
            let features = angle_features(&merged, &grey_levels, runs.max_run);
            let values = features.unwrap_or([f64::NAN; FEATURE_NAMES.len()]);
            FEATURE_NAMES.iter().copied().zip(values).collect()
        }
    }
}

/// Returns the grey level of each renumbered level as f64.
fn grey_level_values(present_levels: &[u32]) -> Vec<f64> {
    present_levels
        .iter()
        .map(|&level| f64::from(level))
        .collect()
}

/// Computes the features of every angle and averages them over the non-empty angles.
fn features_from_runs(
    runs: &RunLengthCounts,
    present_levels: &[u32],
    angle_count: usize,
) -> Vec<(&'static str, f64)> {
    let grey_levels = grey_level_values(present_levels);
    let per_angle: Vec<[f64; FEATURE_NAMES.len()]> = (0..angle_count)
        .filter_map(|angle| {
            let counts: Vec<f64> = runs
                .angle(angle)
                .iter()
                .map(|&count| count as f64)
                .collect();
            angle_features(&counts, &grey_levels, runs.max_run)
        })
        .collect();

    FEATURE_NAMES
        .iter()
        .enumerate()
        .map(|(index, &name)| {
            let values: Vec<f64> = per_angle.iter().map(|features| features[index]).collect();
            (name, nan_mean(&values))
        })
        .collect()
}

/// Returns the features of one angle from its G × L run counts, in the order of
/// [`FEATURE_NAMES`], or `None` for an empty angle. The counts are whole numbers, or
/// weighted sums of them for a merged matrix. Whole counts sum exactly in f64.
fn angle_features(
    counts: &[f64],
    grey: &[f64],
    max_run: usize,
) -> Option<[f64; FEATURE_NAMES.len()]> {
    let levels = grey.len();

    // Marginals: p_g per level, p_r per run length, N_r and N_p.
    let mut per_level = vec![0.0; levels];
    let mut per_length = vec![0.0; max_run];
    for level in 0..levels {
        for length in 0..max_run {
            let count = counts[level * max_run + length];
            per_level[level] += count;
            per_length[length] += count;
        }
    }
    let run_count: f64 = per_level.iter().sum();
    if run_count == 0.0 {
        return None;
    }
    let voxel_count: f64 = per_length
        .iter()
        .enumerate()
        .map(|(length, &count)| (length as f64 + 1.0) * count)
        .sum();
    let n_r = run_count;
    let eps = f64::EPSILON;

    // Features of p_g (grey levels i).
    let mut level_squares = 0.0;
    let mut high_grey = 0.0;
    let mut low_grey = 0.0;
    let mut grey_mean = 0.0;
    for (&count, &i) in per_level.iter().zip(grey) {
        level_squares += count * count;
        high_grey += count * (i * i);
        low_grey += count / (i * i);
        grey_mean += (count / n_r) * i;
    }
    let grey_variance: f64 = per_level
        .iter()
        .zip(grey)
        .map(|(&count, &i)| (count / n_r) * ((i - grey_mean) * (i - grey_mean)))
        .sum();

    // Features of p_r (run lengths j).
    let mut length_squares = 0.0;
    let mut long_runs = 0.0;
    let mut short_runs = 0.0;
    let mut length_mean = 0.0;
    for (index, &count) in per_length.iter().enumerate() {
        let j = index as f64 + 1.0;
        length_squares += count * count;
        long_runs += count * (j * j);
        short_runs += count / (j * j);
        length_mean += (count / n_r) * j;
    }
    let length_variance: f64 = per_length
        .iter()
        .enumerate()
        .map(|(index, &count)| {
            let j = index as f64 + 1.0;
            (count / n_r) * ((j - length_mean) * (j - length_mean))
        })
        .sum();

    // Joint features of P(i, j).
    let mut long_run_high_grey = 0.0;
    let mut long_run_low_grey = 0.0;
    let mut short_run_high_grey = 0.0;
    let mut short_run_low_grey = 0.0;
    let mut entropy = 0.0;
    for (level, &i) in grey.iter().enumerate() {
        for length in 0..max_run {
            let count = counts[level * max_run + length];
            if count == 0.0 {
                continue;
            }
            let j = length as f64 + 1.0;
            long_run_high_grey += count * ((j * j) * (i * i));
            long_run_low_grey += count * (j * j) / (i * i);
            short_run_high_grey += count * (i * i) / (j * j);
            short_run_low_grey += count / ((i * i) * (j * j));
            let p = count / n_r;
            entropy -= p * (p + eps).log2();
        }
    }

    Some([
        level_squares / n_r,
        level_squares / (n_r * n_r),
        grey_variance,
        high_grey / n_r,
        long_runs / n_r,
        long_run_high_grey / n_r,
        long_run_low_grey / n_r,
        low_grey / n_r,
        entropy,
        length_squares / n_r,
        length_squares / (n_r * n_r),
        n_r / voxel_count,
        length_variance,
        short_runs / n_r,
        short_run_high_grey / n_r,
        short_run_low_grey / n_r,
    ])
}

#[cfg(test)]
mod tests;
