//! IBSI intensity histogram features (family "intensity histogram") of the discretised
//! ROI grey levels X_d ∈ {1, …, N_g}.
//!
//! The descriptive statistics are those of the intensity statistics module, on X_d. Let
//! n_i be the number of voxels with grey level i, p_i = n_i / N_v, and the histogram
//! gradient H'_1 = n_2 − n_1, H'_i = (n_(i+1) − n_(i−1)) / 2, H'_(N_g) = n_(N_g) − n_(N_g−1),
//! over every level from 1 to N_g, empty levels included.

use super::grey_levels::RoiGrid;
use super::statistics::describe;

/// Tags of [`compute`] without the `ih_` prefix, in output order.
pub(super) const NAMES: [&str; 23] = [
    "mean",
    "var",
    "skew",
    "kurt",
    "median",
    "min",
    "p10",
    "p90",
    "max",
    "mode",
    "iqr",
    "range",
    "mad",
    "rmad",
    "medad",
    "cov",
    "qcod",
    "entropy",
    "uniformity",
    "max_grad",
    "max_grad_g",
    "min_grad",
    "min_grad_g",
];

/// Computes the 23 IBSI intensity histogram features, tagged `ih_*`: the descriptive
/// statistics of X_d (mean X6K6 … quartile coefficient of dispersion SLWD), the mode
/// (AMMC, the lowest of equally frequent levels), entropy −Σ p_i log₂ p_i (TLU2),
/// uniformity Σ p_i² (BJ5W), the maximum gradient max H' (12CE) and its grey level (8E6O),
/// and the minimum gradient min H' (VQB3) and its grey level (RHQZ). The grey level of an
/// extreme gradient is the lowest one that reaches it.
pub(super) fn compute(grid: &RoiGrid) -> Vec<(String, f64)> {
    let levels = grid.roi_levels();
    let stats = describe(&levels);
    let n_levels = grid.n_levels as usize;

    let mut counts = vec![0.0_f64; n_levels];
    for &level in &levels {
        counts[level as usize - 1] += 1.0;
    }
    let total = levels.len() as f64;

    let mut mode = 1;
    for (index, &count) in counts.iter().enumerate() {
        if count > counts[mode - 1] {
            mode = index + 1;
        }
    }
    let entropy: f64 = counts
        .iter()
        .filter(|&&count| count > 0.0)
        .map(|&count| {
            let p = count / total;
            -p * p.log2()
        })
        .sum();
    let uniformity: f64 = counts.iter().map(|&count| (count / total).powi(2)).sum();

    let gradient: Vec<f64> = (0..n_levels)
        .map(|index| match index {
            _ if n_levels == 1 => 0.0,
            0 => counts[1] - counts[0],
            last if last == n_levels - 1 => counts[last] - counts[last - 1],
            middle => (counts[middle + 1] - counts[middle - 1]) / 2.0,
        })
        .collect();
    let (mut max_index, mut min_index) = (0, 0);
    for (index, &value) in gradient.iter().enumerate() {
        if value > gradient[max_index] {
            max_index = index;
        }
        if value < gradient[min_index] {
            min_index = index;
        }
    }

    super::tagged(
        "ih_",
        "",
        NAMES,
        [
            stats.mean,
            stats.variance,
            stats.skewness,
            stats.excess_kurtosis,
            stats.median,
            stats.minimum,
            stats.p10,
            stats.p90,
            stats.maximum,
            mode as f64,
            stats.p75 - stats.p25,
            stats.maximum - stats.minimum,
            stats.mean_absolute_deviation,
            stats.robust_mean_absolute_deviation,
            stats.median_absolute_deviation,
            stats.coefficient_of_variation,
            stats.quartile_coefficient_of_dispersion,
            entropy,
            uniformity,
            gradient[max_index],
            (max_index + 1) as f64,
            gradient[min_index],
            (min_index + 1) as f64,
        ],
    )
}
