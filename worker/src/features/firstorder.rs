//! First-order features: statistics of the intensities inside the ROI.
//!
//! The features and their conventions follow PyRadiomics 3.1.4 (`radiomics.firstorder`,
//! PyPI package `pyradiomics-bhklab`) with default settings: no resampling, no
//! normalisation, fixed bin width. The tests compare against reference values from that
//! version and state how they were produced.
//!
//! Let:
//!
//! - **X** be the intensities of the N_p voxels in the ROI (the `values` argument);
//! - **X̄** = (1/N_p) Σ X(i), the mean;
//! - **c** be the voxel array shift (`voxel_array_shift`), added to X in Energy, TotalEnergy
//!   and RootMeanSquared only;
//! - **V_voxel** be the volume of one voxel in mm³;
//! - **P_q** be the q-th percentile of X, interpolated linearly between order statistics
//!   (numpy's default `linear` method): with X sorted ascending and indexed from 0,
//!   P_q = X₍ₖ₎ + γ·(X₍ₖ₊₁₎ − X₍ₖ₎) where k + γ = (N_p − 1)·q/100 and 0 ≤ γ < 1;
//! - **X₁₀₋₉₀** be the voxels with P₁₀ ≤ X(i) ≤ P₉₀, and N₁₀₋₉₀ their number;
//! - **μ_m** = (1/N_p) Σ (X(i) − X̄)ᵐ, the m-th central moment (population moments, no
//!   N_p − 1 correction);
//! - **w** be the bin width (`bin_width`) and N_g the number of non-empty bins after
//!   discretisation;
//! - **p(i)** = (number of voxels in bin i) / N_p;
//! - **ε** = 2.220446049250313 × 10⁻¹⁶, the f64 machine epsilon, which PyRadiomics adds
//!   inside the logarithm of Entropy.
//!
//! Discretisation (Entropy and Uniformity only) uses PyRadiomics' fixed-bin-width rule: the
//! lowest bin edge is L = min(X) − (min(X) mod w), with the floor-style modulo of Python, so
//! L ≤ min(X) and L is a multiple of w also for negative intensities. Bins are right-open,
//! [L + (i − 1)·w, L + i·w), and numbered from i = 1. A flat ROI lands in a single bin. The
//! edges are computed the way `numpy.arange` computes them (second edge L + w, later edges
//! L + i·((L + w) − L)), so values that sit exactly on an edge fall into the same bin as in
//! PyRadiomics.
//!
//! Sums use the pairwise summation of numpy's `add.reduce` (blocks of 8 partial sums, halving
//! above 128 terms) in the order of `values`. Passed in the order of PyRadiomics'
//! `imageArray[mask]`, which is C order of the (k, j, i) array, so i fastest and k slowest,
//! the sums match numpy's to the last bit. Another order changes them by rounding only.

use super::discretize::FixedWidthEdges;
use super::order_statistics::{
    OrderStatistics, median, median_ranks, percentile, percentile_ranks,
};
use super::pairwise_sum::pairwise_sum;

/// Percentiles read by the features: P₁₀, P₂₅, P₇₅ and P₉₀.
const PERCENTILES: [f64; 4] = [10.0, 25.0, 75.0, 90.0];

/// Feature names in output order, as PyRadiomics names them without the
/// `original_firstorder_` prefix.
pub const FEATURE_NAMES: [&str; 18] = [
    "Energy",
    "TotalEnergy",
    "Entropy",
    "Minimum",
    "10Percentile",
    "90Percentile",
    "Maximum",
    "Mean",
    "Median",
    "InterquartileRange",
    "Range",
    "MeanAbsoluteDeviation",
    "RobustMeanAbsoluteDeviation",
    "RootMeanSquared",
    "Skewness",
    "Kurtosis",
    "Variance",
    "Uniformity",
];

/// Settings validated by the caller: bin_width > 0 and finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirstOrderSettings {
    /// Bin width w of the fixed-bin-width discretisation, in intensity units
    /// (PyRadiomics `binWidth`, default 25).
    pub bin_width: f64,
    /// Shift c added to every intensity in Energy, TotalEnergy and RootMeanSquared
    /// (PyRadiomics `voxelArrayShift`, default 0).
    pub voxel_array_shift: f64,
}

/// Computes PyRadiomics' 18 default first-order features of one ROI.
///
/// `values` are the ROI's voxel intensities; the caller guarantees that they are non-empty
/// and finite. `voxel_volume_mm3` is the product of the voxel spacing. Returns
/// `(name, value)` pairs in the order of [`FEATURE_NAMES`].
///
/// Each feature, in output order (IBSI names and codes from the IBSI reference manual):
///
/// 1. **Energy** = Σ (X(i) + c)². IBSI "energy" (N8CA) when c = 0. Unit: intensity².
/// 2. **TotalEnergy** = V_voxel · Σ (X(i) + c)². No IBSI equivalent. Unit: intensity²·mm³.
/// 3. **Entropy** = −Σᵢ p(i) · log₂(p(i) + ε) over the N_g non-empty bins. IBSI
///    "discretised intensity entropy" (TLU2), which has no ε. Unit: bits. A flat ROI returns
///    −log₂(1 + ε) ≈ −3.2 × 10⁻¹⁶, as PyRadiomics does, not 0.
/// 4. **Minimum** = min(X). IBSI "minimum intensity" (1GSF).
/// 5. **10Percentile** = P₁₀. IBSI "10th intensity percentile" (QG58) defines the percentile
///    without interpolation; here it is interpolated as in PyRadiomics.
/// 6. **90Percentile** = P₉₀. IBSI "90th intensity percentile" (8DWT), same remark.
/// 7. **Maximum** = max(X). IBSI "maximum intensity" (84IY).
/// 8. **Mean** = X̄. IBSI "mean intensity" (Q4LE).
/// 9. **Median** = P₅₀, the middle value, or the mean of the two middle values for even N_p.
///    IBSI "median intensity" (Y12H).
/// 10. **InterquartileRange** = P₇₅ − P₂₅. IBSI "intensity interquartile range" (SALO),
///     with interpolated percentiles.
/// 11. **Range** = max(X) − min(X). IBSI "intensity range" (2OJQ).
/// 12. **MeanAbsoluteDeviation** = (1/N_p) Σ |X(i) − X̄|. IBSI "mean absolute deviation"
///     (4FUA).
/// 13. **RobustMeanAbsoluteDeviation** = (1/N₁₀₋₉₀) Σ |X₁₀₋₉₀(i) − X̄₁₀₋₉₀| over the voxels
///     between P₁₀ and P₉₀ inclusive, X̄₁₀₋₉₀ being their mean. IBSI "robust mean absolute
///     deviation" (1128).
/// 14. **RootMeanSquared** = √((1/N_p) Σ (X(i) + c)²). IBSI "root mean square intensity"
///     (5ZWQ) when c = 0.
/// 15. **Skewness** = μ₃ / μ₂^(3/2). IBSI "intensity skewness" (KE2A). Dimensionless. A flat
///     ROI (all values equal) returns 0.
/// 16. **Kurtosis** = μ₄ / μ₂². Not the excess kurtosis: IBSI "intensity kurtosis" (IPH6) is
///     this value − 3. A flat ROI returns 0, as in PyRadiomics (the IBSI value would be −3).
/// 17. **Variance** = μ₂, the population variance. IBSI "intensity variance" (ECT3).
///     Unit: intensity².
/// 18. **Uniformity** = Σᵢ p(i)². IBSI "discretised intensity uniformity" (BJ5W). 1 for a
///     flat ROI.
///
/// Features 4–13 and RootMeanSquared are in intensity units. Features 4–13 and 15–17 do not
/// depend on the bin width or the shift.
///
/// Deviations from PyRadiomics 3.1.4:
///
/// - A flat ROI is detected as min(X) = max(X). PyRadiomics returns 0 only when μ₂ is
///   exactly 0, which misses flat ROIs whose mean is not exactly representable: for seven
///   voxels of 0.1 it computes μ₂ ≈ 1.9 × 10⁻³⁴ and returns Skewness and Kurtosis of 1.
/// - PyRadiomics discretises the image in its stored type (float32 for most NIfTI MR), this
///   module in f64. Whole-number intensities below 2²⁴ bin identically; other float32 values
///   can land in a neighbouring bin when they sit within float32 rounding of an edge.
/// - Bin indices are kept as f64, so they cannot overflow. Beyond 2⁵³ bins neighbouring
///   bins may merge, but numpy cannot allocate that many bin edges, so PyRadiomics fails on
///   such ROIs instead.
/// - Two voxels with different values have no voxel between P₁₀ and P₉₀. PyRadiomics then
///   returns NaN for RobustMeanAbsoluteDeviation (the mean of no values), this function 0.
///   From three voxels on, (N_p − 1)·[0.1, 0.9] always contains an order statistic.
/// - An empty `values` (excluded by the caller) returns NaN for every feature instead of
///   panicking.
pub fn compute(
    values: &[f64],
    voxel_volume_mm3: f64,
    settings: &FirstOrderSettings,
) -> Vec<(&'static str, f64)> {
    if values.is_empty() {
        return FEATURE_NAMES.iter().map(|&name| (name, f64::NAN)).collect();
    }
    let last = values.len() - 1;
    let ranks: Vec<usize> = [[0, last], median_ranks(values.len())]
        .into_iter()
        .chain(PERCENTILES.map(|q| percentile_ranks(values.len(), q)))
        .flatten()
        .collect();
    let order = OrderStatistics::select(values, &ranks);
    let (minimum, maximum) = (order.at(0), order.at(last));
    let count = values.len() as f64;

    let shift = settings.voxel_array_shift;
    let shifted_squares: Vec<f64> = values.iter().map(|&x| (x + shift) * (x + shift)).collect();
    let energy = pairwise_sum(&shifted_squares);
    let total_energy = energy * voxel_volume_mm3;
    let root_mean_squared = (energy / count).sqrt();

    let bin_fractions = bin_fractions(values, minimum, maximum, settings.bin_width);
    let entropy_terms: Vec<f64> = bin_fractions
        .iter()
        .map(|&p| p * (p + f64::EPSILON).log2())
        .collect();
    let entropy = -pairwise_sum(&entropy_terms);
    let squared_fractions: Vec<f64> = bin_fractions.iter().map(|&p| p * p).collect();
    let uniformity = pairwise_sum(&squared_fractions);

    let [percentile_10, percentile_25, percentile_75, percentile_90] =
        PERCENTILES.map(|q| percentile(&order, q));
    let median = median(&order);

    let mean = pairwise_sum(values) / count;
    let absolute_deviations: Vec<f64> = values.iter().map(|&x| (x - mean).abs()).collect();
    let mean_absolute_deviation = pairwise_sum(&absolute_deviations) / count;
    let robust_mean_absolute_deviation =
        robust_mean_absolute_deviation(values, percentile_10, percentile_90);

    let moments = central_moments(values, mean, minimum == maximum);

    vec![
        ("Energy", energy),
        ("TotalEnergy", total_energy),
        ("Entropy", entropy),
        ("Minimum", minimum),
        ("10Percentile", percentile_10),
        ("90Percentile", percentile_90),
        ("Maximum", maximum),
        ("Mean", mean),
        ("Median", median),
        ("InterquartileRange", percentile_75 - percentile_25),
        ("Range", maximum - minimum),
        ("MeanAbsoluteDeviation", mean_absolute_deviation),
        (
            "RobustMeanAbsoluteDeviation",
            robust_mean_absolute_deviation,
        ),
        ("RootMeanSquared", root_mean_squared),
        ("Skewness", moments.skewness),
        ("Kurtosis", moments.kurtosis),
        ("Variance", moments.variance),
        ("Uniformity", uniformity),
    ]
}

/// Returns the fraction of voxels in each non-empty bin, ascending by bin, for the
/// fixed-bin-width discretisation described in the module documentation. `minimum` and
/// `maximum` are those of `values`.
///
/// The voxels are counted in a table indexed by bin when there are at most about four bins
/// per voxel. Otherwise the bin indices are sorted and counted in runs. Both give the same
/// counts, so the fractions do not depend on the path.
fn bin_fractions(values: &[f64], minimum: f64, maximum: f64, bin_width: f64) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    let edges = FixedWidthEdges::new(minimum, maximum, bin_width);
    let count = values.len() as f64;
    let fraction = |voxels_in_bin: usize| voxels_in_bin as f64 / count;

    // Bins run from 1 to edges.last() + 1.
    let bin_count = edges.last() + 2.0;
    if bin_count <= (4 * values.len() + 64) as f64 {
        let mut voxels_per_bin = vec![0_usize; bin_count as usize];
        for &value in values {
            voxels_per_bin[edges.bin_of(value) as usize] += 1;
        }
        return voxels_per_bin
            .into_iter()
            .filter(|&voxels| voxels > 0)
            .map(fraction)
            .collect();
    }

    let mut bins: Vec<f64> = values.iter().map(|&value| edges.bin_of(value)).collect();
    bins.sort_unstable_by(f64::total_cmp);
    let mut fractions = Vec::new();
    let mut voxels_in_bin = 0_usize;
    for (index, &bin) in bins.iter().enumerate() {
        voxels_in_bin += 1;
        if bins.get(index + 1) != Some(&bin) {
            fractions.push(fraction(voxels_in_bin));
            voxels_in_bin = 0;
        }
    }
    fractions
}

/// Returns the mean absolute deviation of the voxels with `lower ≤ X ≤ upper` from their
/// own mean, or 0 when no voxel qualifies.
fn robust_mean_absolute_deviation(values: &[f64], lower: f64, upper: f64) -> f64 {
    // numpy replaces the excluded voxels by NaN and then by 0 before summing all N_p terms.
    // Keeping the zeros in place keeps its summation tree, and so its rounding.
    let included: Vec<bool> = values
        .iter()
        .map(|&x| !(x - lower < 0.0 || x - upper > 0.0))
        .collect();
    let kept = included.iter().filter(|&&keep| keep).count();
    if kept == 0 {
        return 0.0;
    }
    let kept = kept as f64;
    let masked: Vec<f64> = values
        .iter()
        .zip(&included)
        .map(|(&x, &keep)| if keep { x } else { 0.0 })
        .collect();
    let robust_mean = pairwise_sum(&masked) / kept;
    let deviations: Vec<f64> = values
        .iter()
        .zip(&included)
        .map(|(&x, &keep)| if keep { (x - robust_mean).abs() } else { 0.0 })
        .collect();
    pairwise_sum(&deviations) / kept
}

/// Moment-based features: Variance, Skewness and Kurtosis.
struct Moments {
    variance: f64,
    skewness: f64,
    kurtosis: f64,
}

/// Computes the moment-based features from the mean. Squares are x·x, as in PyRadiomics;
/// cubes and fourth powers are [`cube`] and [`fourth_power`] where PyRadiomics calls `pow`.
fn central_moments(values: &[f64], mean: f64, flat: bool) -> Moments {
    let count = values.len() as f64;
    let deviations: Vec<f64> = values.iter().map(|&x| x - mean).collect();
    let squares: Vec<f64> = deviations.iter().map(|&d| d * d).collect();
    let second = pairwise_sum(&squares) / count;
    // PyRadiomics reports Variance as numpy.nanstd(X) ** 2, a square root and a square.
    let standard_deviation = second.sqrt();
    let variance = standard_deviation * standard_deviation;

    if flat || second == 0.0 {
        return Moments {
            variance,
            skewness: 0.0,
            kurtosis: 0.0,
        };
    }
    let cubes: Vec<f64> = deviations.iter().map(|&d| cube(d)).collect();
    let fourth_powers: Vec<f64> = deviations.iter().map(|&d| fourth_power(d)).collect();
    let third = pairwise_sum(&cubes) / count;
    let fourth = pairwise_sum(&fourth_powers) / count;
    Moments {
        variance,
        skewness: third / second.powf(1.5),
        kurtosis: fourth / (second * second),
    }
}

/// Returns d³ rounded once, from a product with its rounding error carried along.
///
/// With s = d·d rounded and e = d·d − s (exact, by fused multiply-add), d³ = s·d + e·d; the
/// product s·d is split the same way, so only e·d and the final sum round. That is the
/// correctly rounded d³ except within about 2⁻⁵⁰ units in the last place of a rounding
/// tie. It replaces `d.powf(3.0)`, which took three times as long. NOTE: glibc's `pow`,
/// which numpy's `**` calls, is not correctly rounded in every case. On 20 million random
/// deviations it differed from this function by one unit in the last place for about
/// 0.08 % of them. So Skewness and Kurtosis can differ from PyRadiomics' in the last bits.
fn cube(d: f64) -> f64 {
    let square = d * d;
    let square_error = d.mul_add(d, -square);
    let product = square * d;
    let product_error = square.mul_add(d, -product) + square_error * d;
    product + product_error
}

/// Returns d⁴ rounded once, as [`cube`] does: (s + e)² = s·s + 2·s·e + e², with e² below
/// the rounding of the sum.
fn fourth_power(d: f64) -> f64 {
    let square = d * d;
    let square_error = d.mul_add(d, -square);
    let product = square * square;
    let product_error = square.mul_add(square, -product) + 2.0 * square * square_error;
    product + product_error
}

#[cfg(test)]
mod tests;
