//! Grey level co-occurrence matrix (GLCM) features.
//!
//! The features and their conventions follow PyRadiomics 3.1.4 (`radiomics.glcm`, PyPI
//! package `pyradiomics-bhklab`, numpy 2.4.6) with default settings: 3-D, distance 1,
//! symmetric matrices, no distance weighting. Features are computed on the matrix of each
//! angle separately and then averaged over the angles, IBSI aggregation "3D, averaged" (ITBB).
//! The tests compare against reference values from that version and state how they were
//! produced.
//!
//! Let:
//!
//! - **the angles** be PyRadiomics' neighbour offsets (di, dj, dk) at the requested Chebyshev
//!   distances δ, one of each ± pair: 13 for δ = 1, in PyRadiomics' order (descending
//!   lexicographic order of (dk, dj, di), the first nonzero component positive);
//! - **P(i, j)** be, for one angle (di, dj, dk), the number of ROI voxels with grey level i
//!   whose voxel at (+di, +dj, +dk) is in the ROI with grey level j. A symmetric matrix
//!   (the default) adds the transpose, P(i, j) + P(j, i), so each pair counts in both orders;
//! - **p(i, j)** = P(i, j) / Σ P, the normalised matrix. An angle with Σ P = 0 (no voxel pair
//!   of the ROI along it) is left out of the average;
//! - **i, j** run over the grey levels present in the ROI, with their actual values from the
//!   discretisation, so gaps between levels count in differences such as i − j. Levels absent
//!   from the ROI have no row or column, as PyRadiomics deletes them;
//! - **N_g** be the highest grey level present (PyRadiomics' `Ng`, which counts the empty
//!   levels below it);
//! - **p_x(i)** = Σ_j p(i, j) and **p_y(j)** = Σ_i p(i, j), the marginal distributions;
//! - **μ_x** = Σ i·p(i, j) and **μ_y** = Σ j·p(i, j);
//! - **σ_x** = √(Σ (i − μ_x)²·p(i, j)) and **σ_y** = √(Σ (j − μ_y)²·p(i, j));
//! - **p_x+y(k)** = Σ over i + j = k of p(i, j), for k = 2 … 2N_g;
//! - **p_x−y(k)** = Σ over |i − j| = k of p(i, j), for k = 0 … N_g − 1;
//! - **ε** = 2.220446049250313 × 10⁻¹⁶, the f64 machine epsilon (numpy's `spacing(1)`), which
//!   PyRadiomics adds inside every logarithm and to some denominators;
//! - **HX** = −Σ p_x(i)·log₂(p_x(i) + ε), **HY** likewise for p_y;
//! - **HXY** = −Σ p(i, j)·log₂(p(i, j) + ε);
//! - **HXY1** = −Σ p(i, j)·log₂(p_x(i)·p_y(j) + ε);
//! - **HXY2** = −Σ p_x(i)·p_y(j)·log₂(p_x(i)·p_y(j) + ε).
//!
//! Sums without bounds run over all i and j. Every feature is computed per angle, and the
//! output is the mean over the angles where the feature is not NaN (numpy's `nanmean`, with
//! its rounding). A feature is NaN for one angle in two cases, both as in PyRadiomics: Imc2
//! when rounding makes HXY > HXY2, and MCC when rounding makes λ₂ negative.

mod eigen;
mod matrix;
mod mcc;

use crate::features::discretize::{TextureInput, nan_mean};
use crate::features::padded_grids::PaddedGrids;
use crate::features::texture_angles::TextureAngles;

use matrix::{CooccurrenceCounts, count_cooccurrences};
use mcc::{maximal_correlation_coefficient, q_eigenvalues};

/// Feature names in output order, as PyRadiomics names them without the `original_glcm_`
/// prefix. PyRadiomics 3.1.4 enables these 24 by default (all but the deprecated ones) and
/// outputs them in this alphabetical order.
pub const FEATURE_NAMES: [&str; 24] = [
    "Autocorrelation",
    "ClusterProminence",
    "ClusterShade",
    "ClusterTendency",
    "Contrast",
    "Correlation",
    "DifferenceAverage",
    "DifferenceEntropy",
    "DifferenceVariance",
    "Id",
    "Idm",
    "Idmn",
    "Idn",
    "Imc1",
    "Imc2",
    "InverseVariance",
    "JointAverage",
    "JointEnergy",
    "JointEntropy",
    "MCC",
    "MaximumProbability",
    "SumAverage",
    "SumEntropy",
    "SumSquares",
];

/// Position of MCC in [`FEATURE_NAMES`]; it is averaged separately.
const MCC_INDEX: usize = 19;

/// GLCM settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlcmSettings {
    /// Chebyshev distances δ between a voxel and its neighbour, in voxels (PyRadiomics
    /// `distances`, default `[1]`). Each must be ≥ 1.
    pub distances: Vec<u32>,
    /// Whether to add the transpose to each matrix (PyRadiomics `symmetricalGLCM`, default
    /// true).
    pub symmetric: bool,
}

impl Default for GlcmSettings {
    /// PyRadiomics' defaults: distance 1, symmetric.
    fn default() -> Self {
        GlcmSettings {
            distances: vec![1],
            symmetric: true,
        }
    }
}

/// Invalid GLCM settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlcmSettingsError {
    /// The distance list is empty or contains 0.
    #[error("glcm distances {0:?} are invalid; give at least one distance, each >= 1 voxel")]
    Distances(Vec<u32>),
}

impl GlcmSettings {
    /// Checks the settings once, where they enter the worker.
    pub fn validate(&self) -> Result<(), GlcmSettingsError> {
        if self.distances.is_empty() || self.distances.contains(&0) {
            return Err(GlcmSettingsError::Distances(self.distances.clone()));
        }
        Ok(())
    }
}

/// Computes PyRadiomics' 24 default GLCM features of one discretised ROI.
///
/// Returns `(name, value)` pairs in the order of [`FEATURE_NAMES`]. Distances of 0 in
/// `settings` are ignored (see [`GlcmSettings::validate`]). If no angle has a voxel pair in
/// the ROI, for example when no two ROI voxels touch, every feature is NaN, as in
/// PyRadiomics. MCC is the exception: it is 1 for a single grey level.
///
/// Each feature, in output order (IBSI names and codes from the IBSI reference manual; units
/// in grey levels, "GL"):
///
/// 1. **Autocorrelation** = Σ i·j·p(i, j). IBSI "autocorrelation" (QWB0). Unit: GL². The
///    coarseness of the texture: large when high levels neighbour high levels.
/// 2. **ClusterProminence** = Σ (i + j − μ_x − μ_y)⁴·p(i, j). IBSI "cluster prominence"
///    (AE86). Unit: GL⁴. Tailedness of p_x+y about its mean.
/// 3. **ClusterShade** = Σ (i + j − μ_x − μ_y)³·p(i, j). IBSI "cluster shade" (7NFM).
///    Unit: GL³. Skewness of p_x+y; it can be negative.
/// 4. **ClusterTendency** = Σ (i + j − μ_x − μ_y)²·p(i, j). IBSI "cluster tendency" (DG8W),
///    equal to IBSI "sum variance" (OEEB). Unit: GL². Grouping of similar levels.
/// 5. **Contrast** = Σ (i − j)²·p(i, j). IBSI "contrast" (ACUI). Unit: GL². Local
///    variation: large when neighbours differ strongly.
/// 6. **Correlation** = (Σ i·j·p(i, j) − μ_x·μ_y) / (σ_x·σ_y + ε), evaluated as
///    Σ (i − μ_x)(j − μ_y)·p(i, j) / (σ_x·σ_y + ε). IBSI "correlation" (NI2N), which has no ε.
///    Dimensionless, in [−1, 1]: linear dependence between neighbouring levels. An angle
///    with σ_x·σ_y = 0 (one grey level along it) gives 1, as in PyRadiomics.
/// 7. **DifferenceAverage** = Σ_k k·p_x−y(k). IBSI "difference average" (TF7R), equal to
///    IBSI "dissimilarity" (8S9J). Unit: GL.
/// 8. **DifferenceEntropy** = −Σ_k p_x−y(k)·log₂(p_x−y(k) + ε). IBSI "difference entropy"
///    (NTRS), which has no ε. Unit: bits.
/// 9. **DifferenceVariance** = Σ_k (k − DifferenceAverage)²·p_x−y(k). IBSI "difference
///    variance" (D3YU). Unit: GL².
/// 10. **Id** = Σ_k p_x−y(k) / (1 + k). IBSI "inverse difference" (IB1Z). Dimensionless,
///     in (0, 1]: local homogeneity.
/// 11. **Idm** = Σ_k p_x−y(k) / (1 + k²). IBSI "inverse difference moment" (WF0Z).
///     Dimensionless, in (0, 1].
/// 12. **Idmn** = Σ_k p_x−y(k) / (1 + k²/N_g²). IBSI "normalised inverse difference moment"
///     (1QCO). Dimensionless, in (0, 1].
/// 13. **Idn** = Σ_k p_x−y(k) / (1 + k/N_g). IBSI "normalised inverse difference" (NDRX).
///     Dimensionless, in (0, 1].
/// 14. **Imc1** = (HXY − HXY1) / max(HX, HY). IBSI "information correlation 1" (R8DG).
///     Dimensionless, in [−1, 0]: minus the mutual information of i and j, scaled. An angle
///     with max(HX, HY) = 0 gives 0, as in PyRadiomics.
/// 15. **Imc2** = √(1 − e^(−2·(HXY2 − HXY))). IBSI "information correlation 2" (JN9H).
///     Dimensionless, in [0, 1). An angle with HXY2 = HXY gives 0, and one where rounding
///     makes HXY2 < HXY gives NaN and is left out of the mean, both as in PyRadiomics.
/// 16. **InverseVariance** = Σ_(k ≥ 1) p_x−y(k) / k². IBSI "inverse variance" (E8JP).
///     Unit: GL⁻².
/// 17. **JointAverage** = μ_x. IBSI "joint average" (60VM). Unit: GL. Assumes a symmetric
///     matrix, like PyRadiomics; otherwise it describes i only.
/// 18. **JointEnergy** = Σ p(i, j)². IBSI "angular second moment" (8ZQL). Dimensionless,
///     in (0, 1]: 1 for a single pair of levels.
/// 19. **JointEntropy** = HXY. IBSI "joint entropy" (TU9B), which has no ε. Unit: bits.
/// 20. **MCC** = √λ₂, where λ₂ is the second largest eigenvalue of
///     Q(i, j) = Σ_k p(i, k)·p(j, k) / (p_x(i)·p_y(k) + ε). No IBSI equivalent.
///     Dimensionless, in [0, 1]: the maximal correlation coefficient. An ROI with a single
///     grey level gives 1, as in PyRadiomics.
/// 21. **MaximumProbability** = max p(i, j). IBSI "joint maximum" (GYBY). Dimensionless.
/// 22. **SumAverage** = Σ_k k·p_x+y(k). IBSI "sum average" (ZGXS). Unit: GL. Equal to
///     2·JointAverage for a symmetric matrix.
/// 23. **SumEntropy** = −Σ_k p_x+y(k)·log₂(p_x+y(k) + ε). IBSI "sum entropy" (P6QZ), which
///     has no ε. Unit: bits.
/// 24. **SumSquares** = Σ (i − μ_x)²·p(i, j). IBSI "joint variance" (UR99). Unit: GL².
///     Assumes a symmetric matrix, like JointAverage.
///
/// A flat ROI (one grey level g) gives, like PyRadiomics: Autocorrelation g², JointAverage g,
/// SumAverage 2g, Correlation 1, Id, Idm, Idmn, Idn, JointEnergy, MaximumProbability and MCC
/// 1, the three entropies −log₂(1 + ε) ≈ −3.2 × 10⁻¹⁶ rather than 0, and 0 for the rest.
///
/// This function uses PyRadiomics' default angles: 3-D, averaged.
/// [`compute_with_angles`] adds force2D and distance weighting (`weightingNorm`).
///
/// Deviation from PyRadiomics 3.1.4:
///
/// - MCC: numpy's `eigvals` returns complex eigenvalues for the whole stack of angles when
///   rounding gives any angle a complex pair. PyRadiomics then takes the real part of a
///   complex square root, so a negative λ₂ contributes 0 instead of NaN. This function
///   follows the same rule with its own eigenvalues, but whether rounding produces a complex
///   pair can differ between LAPACK and this solver when eigenvalues nearly coincide.
///
/// Cost: with G grey levels present and A angles (13 for distance 1), the counts take
/// A·G²·8 bytes and MCC takes O(G³) time per angle, as in PyRadiomics. G = 50 needs 260 kB;
/// G = 10 000 would need 10 GB. Callers bound G through the `max_levels` argument of
/// [`discretize`](crate::features::discretize::discretize).
///
/// References: Haralick RM, Shanmugam K, Dinstein I. Textural features for image
/// classification. IEEE Trans Syst Man Cybern 1973;SMC-3(6):610–621. Zwanenburg A et al. The
/// Image Biomarker Standardization Initiative. Radiology 2020;295(2):328–338.
pub fn compute(input: &TextureInput, settings: &GlcmSettings) -> Vec<(&'static str, f64)> {
    compute_with_angles(input, settings, &TextureAngles::default())
}

/// Computes the GLCM features as [`compute`] does, with the angles of `angles`: only the
/// in-plane angles under force2D, and with a weighting norm one merged matrix instead of
/// the average over the angles (see [`texture_angles`](crate::features::texture_angles)).
///
/// The merged matrix is Σ_a w_a·P_a over the angles, each P_a symmetrised first when
/// `settings.symmetric` is set, and then normalised to p. Every feature, MCC included, is
/// computed once on p. If no angle has a voxel pair, every feature is NaN, as without
/// weighting.
pub fn compute_with_angles(
    input: &TextureInput,
    settings: &GlcmSettings,
    angles: &TextureAngles,
) -> Vec<(&'static str, f64)> {
    compute_with_grids(&mut PaddedGrids::new(input), settings, angles)
}

/// Computes the GLCM features as [`compute_with_angles`] does, on the shared grids of one
/// texture input.
pub(crate) fn compute_with_grids(
    grids: &mut PaddedGrids,
    settings: &GlcmSettings,
    angles: &TextureAngles,
) -> Vec<(&'static str, f64)> {
    let shape: [usize; 3] = grids.input().levels.dim().into();
    let spacing = grids.input().spacing;
    let offsets = angles.offsets(&settings.distances, shape);
    let padding = offsets
        .iter()
        .flat_map(|offset| {
            offset
                .iter()
                .map(|component| component.unsigned_abs() as usize)
        })
        .max()
        .unwrap_or(0);
    let padded = grids.get(padding);
    let counts = count_cooccurrences(padded, &offsets);
    match angles.weighting {
        None => features_from_counts(
            &counts,
            &padded.present_levels,
            offsets.len(),
            settings.symmetric,
        ),
        Some(norm) => {
            let weights: Vec<f64> = offsets
                .iter()
                .map(|&offset| norm.cooccurrence_weight(offset, spacing))
                .collect();
            let grey_levels = grey_level_values(&padded.present_levels);
            let merged = merged_matrix(&counts, &weights, settings.symmetric);
            let angles: Vec<AngleFeatures> = merged
                .iter()
                .map(|probabilities| AngleFeatures::new(probabilities, &grey_levels))
                .collect();
            average_over_angles(&angles, grey_levels.len())
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

/// Computes the features from the per-angle counts and averages them over the angles.
fn features_from_counts(
    counts: &CooccurrenceCounts,
    present_levels: &[u32],
    angle_count: usize,
    symmetric: bool,
) -> Vec<(&'static str, f64)> {
    let grey_levels = grey_level_values(present_levels);
    let angles: Vec<AngleFeatures> = (0..angle_count)
        .filter_map(|angle| {
            let probabilities = normalised_matrix(counts.angle(angle), counts.levels, symmetric)?;
            Some(AngleFeatures::new(&probabilities, &grey_levels))
        })
        .collect();
    average_over_angles(&angles, grey_levels.len())
}

/// Averages each feature over the angles, MCC by its own rule, in [`FEATURE_NAMES`] order.
fn average_over_angles(angles: &[AngleFeatures], levels: usize) -> Vec<(&'static str, f64)> {
    let mut averages = [f64::NAN; FEATURE_NAMES.len()];
    for (index, average) in averages.iter_mut().enumerate() {
        let per_angle: Vec<f64> = angles.iter().map(|angle| angle.values[index]).collect();
        *average = nan_mean(&per_angle);
    }
    averages[MCC_INDEX] = maximal_correlation_coefficient(angles, levels);

    FEATURE_NAMES.iter().copied().zip(averages).collect()
}

/// Returns p(i, j) of the weighted sum of the angles' matrices, G × G row-major, or `None`
/// when no angle has a pair. `weights` has one entry per angle of `counts`.
fn merged_matrix(
    counts: &CooccurrenceCounts,
    weights: &[f64],
    symmetric: bool,
) -> Option<Vec<f64>> {
    let levels = counts.levels;
    let mut merged = vec![0.0; levels * levels];
    for (angle, &weight) in weights.iter().enumerate() {
        let angle_counts = counts.angle(angle);
        for row in 0..levels {
            for column in 0..levels {
                let mut count = angle_counts[row * levels + column];
                if symmetric {
                    count += angle_counts[column * levels + row];
                }
                merged[row * levels + column] += count as f64 * weight;
            }
        }
    }
    // PyRadiomics adds the weighted matrices with numpy's pairwise summation and this
    // function in plain order, so weighted sums can differ in the last bits. Sums of whole
    // counts (no_weighting) are exact in both.
    let total: f64 = merged.iter().sum();
    if total == 0.0 {
        return None;
    }
    Some(merged.iter().map(|&value| value / total).collect())
}

/// Returns p(i, j) for one angle, G × G row-major, or `None` when the angle has no pair.
fn normalised_matrix(counts: &[u64], levels: usize, symmetric: bool) -> Option<Vec<f64>> {
    let mut matrix: Vec<u64> = counts.to_vec();
    if symmetric {
        for row in 0..levels {
            for column in 0..levels {
                matrix[row * levels + column] += counts[column * levels + row];
            }
        }
    }
    // Integer sum, exact; PyRadiomics' float64 sum of integer counts is exact too.
    let total: u64 = matrix.iter().sum();
    if total == 0 {
        return None;
    }
    let total = total as f64;
    Some(matrix.iter().map(|&count| count as f64 / total).collect())
}

/// Features of one angle, in the order of [`FEATURE_NAMES`], and the eigenvalues of its Q
/// matrix for MCC.
struct AngleFeatures {
    values: [f64; FEATURE_NAMES.len()],
    /// Eigenvalues of Q, or `None` if the solver did not converge.
    q_eigenvalues: Option<Vec<eigen::Eigenvalue>>,
}

impl AngleFeatures {
    /// Computes every feature but MCC from p (G × G, row-major) and the grey level of each
    /// row, following PyRadiomics' formulas and evaluation order.
    fn new(p: &[f64], grey: &[f64]) -> Self {
        let g = grey.len();
        let n_g = grey.last().copied().unwrap_or(0.0);
        let eps = f64::EPSILON;

        // Marginals and means (module documentation, "Let:").
        let mut p_x = vec![0.0; g];
        let mut p_y = vec![0.0; g];
        let mut mean_x = 0.0;
        let mut mean_y = 0.0;
        for row in 0..g {
            for column in 0..g {
                let value = p[row * g + column];
                p_x[row] += value;
                p_y[column] += value;
                mean_x += grey[row] * value;
                mean_y += grey[column] * value;
            }
        }

        // Sum and difference distributions: p_x+y over k = 2 … 2N_g, p_x−y over 0 … N_g − 1.
        // Grey levels are whole numbers ≤ N_g, so k indexes them exactly.
        let mut p_sum = vec![0.0; (2.0 * n_g) as usize - 1];
        let mut p_difference = vec![0.0; n_g as usize];

        let mut autocorrelation = 0.0;
        let mut cluster_prominence = 0.0;
        let mut cluster_shade = 0.0;
        let mut cluster_tendency = 0.0;
        let mut contrast = 0.0;
        let mut variance_x = 0.0;
        let mut variance_y = 0.0;
        let mut covariance = 0.0;
        let mut joint_energy = 0.0;
        let mut joint_entropy = 0.0;
        let mut maximum_probability: f64 = 0.0;
        let mut hxy1 = 0.0;
        let mut hxy2 = 0.0;
        for row in 0..g {
            for column in 0..g {
                let (i, j) = (grey[row], grey[column]);

                // HXY2 sums over every cell, also those with p(i, j) = 0.
                let independent = p_x[row] * p_y[column];
                let log_independent = (independent + eps).log2();
                hxy2 -= independent * log_independent;

                let value = p[row * g + column];
                if value == 0.0 {
                    continue;
                }
                p_sum[(i + j) as usize - 2] += value;
                p_difference[(i - j).abs() as usize] += value;

                autocorrelation += value * (i * j);
                let centred_sum = (i + j) - mean_x - mean_y;
                cluster_prominence += value * centred_sum.powf(4.0);
                cluster_shade += value * centred_sum.powf(3.0);
                cluster_tendency += value * (centred_sum * centred_sum);
                contrast += value * ((i - j) * (i - j));
                variance_x += value * ((i - mean_x) * (i - mean_x));
                variance_y += value * ((j - mean_y) * (j - mean_y));
                covariance += value * (i - mean_x) * (j - mean_y);
                joint_energy += value * value;
                joint_entropy -= value * (value + eps).log2();
                maximum_probability = maximum_probability.max(value);
                hxy1 -= value * log_independent;
            }
        }

        // Correlation: PyRadiomics sets 1 where σ_x·σ_y = 0.
        let sigma_product = variance_x.sqrt() * variance_y.sqrt();
        let correlation = if sigma_product == 0.0 {
            1.0
        } else {
            covariance / (sigma_product + eps)
        };

        // Imc1 and Imc2 with PyRadiomics' conventions for a zero denominator and HXY2 = HXY.
        let entropy =
            |marginal: &[f64]| -marginal.iter().map(|&q| q * (q + eps).log2()).sum::<f64>();
        let (hx, hy) = (entropy(&p_x), entropy(&p_y));
        let imc_denominator = hx.max(hy);
        let imc1 = if imc_denominator == 0.0 {
            0.0
        } else {
            (joint_entropy - hxy1) / imc_denominator
        };
        let imc2 = if hxy2 == joint_entropy {
            0.0
        } else {
            // NaN when rounding makes HXY > HXY2; nan_mean then skips this angle.
            (1.0 - (-2.0 * (hxy2 - joint_entropy)).exp()).sqrt()
        };

        // Features of p_x−y, k = |i − j|.
        let mut difference_average = 0.0;
        let mut difference_entropy = 0.0;
        let mut id = 0.0;
        let mut idm = 0.0;
        let mut idmn = 0.0;
        let mut idn = 0.0;
        let mut inverse_variance = 0.0;
        for (k, &value) in p_difference.iter().enumerate() {
            let k = k as f64;
            difference_average += k * value;
            difference_entropy -= value * (value + eps).log2();
            id += value / (1.0 + k);
            idm += value / (1.0 + k * k);
            idmn += value / (1.0 + (k * k) / (n_g * n_g));
            idn += value / (1.0 + k / n_g);
            if k >= 1.0 {
                inverse_variance += value / (k * k);
            }
        }
        let difference_variance: f64 = p_difference
            .iter()
            .enumerate()
            .map(|(k, &value)| value * (k as f64 - difference_average).powi(2))
            .sum();

        // Features of p_x+y, k = i + j.
        let mut sum_average = 0.0;
        let mut sum_entropy = 0.0;
        for (index, &value) in p_sum.iter().enumerate() {
            sum_average += (index as f64 + 2.0) * value;
            sum_entropy -= value * (value + eps).log2();
        }

        let values = [
            autocorrelation,
            cluster_prominence,
            cluster_shade,
            cluster_tendency,
            contrast,
            correlation,
            difference_average,
            difference_entropy,
            difference_variance,
            id,
            idm,
            idmn,
            idn,
            imc1,
            imc2,
            inverse_variance,
            mean_x,
            joint_energy,
            joint_entropy,
            f64::NAN, // MCC, averaged by `maximal_correlation_coefficient`.
            maximum_probability,
            sum_average,
            sum_entropy,
            variance_x,
        ];
        AngleFeatures {
            values,
            q_eigenvalues: q_eigenvalues(p, &p_x, &p_y),
        }
    }
}

#[cfg(test)]
mod tests;
