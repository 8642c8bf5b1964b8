//! IBSI intensity-based statistics (family "intensity statistics") of the raw ROI
//! intensities X_1 … X_N.
//!
//! Moments are population moments (divisor N): μ = Σ X_k / N, m_r = Σ (X_k − μ)^r / N.
//! Percentiles P_q interpolate linearly between order statistics, at position
//! (N − 1) q / 100 in the sorted values (numpy's default). The IBSI manual fixes no
//! method, and the digital phantom gives the same P10, P25, P75 and P90 under every numpy
//! method.

/// Descriptive statistics shared by the intensity statistics and the intensity histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Descriptive {
    pub mean: f64,
    /// Population variance m_2.
    pub variance: f64,
    /// m_3 / m_2^(3/2), 0 when m_2 = 0.
    pub skewness: f64,
    /// Excess kurtosis m_4 / m_2² − 3, 0 when m_2 = 0.
    pub excess_kurtosis: f64,
    pub median: f64,
    pub minimum: f64,
    pub p10: f64,
    pub p25: f64,
    pub p75: f64,
    pub p90: f64,
    pub maximum: f64,
    /// Mean absolute deviation from the mean, Σ |X_k − μ| / N.
    pub mean_absolute_deviation: f64,
    /// Mean absolute deviation from their own mean of the values in [P10, P90].
    pub robust_mean_absolute_deviation: f64,
    /// Mean absolute deviation from the median, Σ |X_k − median| / N.
    pub median_absolute_deviation: f64,
    /// √m_2 / μ.
    pub coefficient_of_variation: f64,
    /// (P75 − P25) / (P75 + P25).
    pub quartile_coefficient_of_dispersion: f64,
}

/// Computes the descriptive statistics of a non-empty sample.
pub(super) fn describe(values: &[f64]) -> Descriptive {
    let count = values.len() as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);

    let mean = values.iter().sum::<f64>() / count;
    let moment = |power: i32| values.iter().map(|x| (x - mean).powi(power)).sum::<f64>() / count;
    let variance = moment(2);
    let (skewness, excess_kurtosis) = if variance > 0.0 {
        (
            moment(3) / variance.powf(1.5),
            moment(4) / (variance * variance) - 3.0,
        )
    } else {
        (0.0, 0.0)
    };

    let median = percentile(&sorted, 50.0);
    let p10 = percentile(&sorted, 10.0);
    let p25 = percentile(&sorted, 25.0);
    let p75 = percentile(&sorted, 75.0);
    let p90 = percentile(&sorted, 90.0);

    let mean_absolute_deviation = values.iter().map(|x| (x - mean).abs()).sum::<f64>() / count;
    let median_absolute_deviation = values.iter().map(|x| (x - median).abs()).sum::<f64>() / count;
    let central: Vec<f64> = values
        .iter()
        .copied()
        .filter(|&x| x >= p10 && x <= p90)
        .collect();
    let central_mean = central.iter().sum::<f64>() / central.len() as f64;
    let robust_mean_absolute_deviation = central
        .iter()
        .map(|x| (x - central_mean).abs())
        .sum::<f64>()
        / central.len() as f64;

    Descriptive {
        mean,
        variance,
        skewness,
        excess_kurtosis,
        median,
        minimum: sorted[0],
        p10,
        p25,
        p75,
        p90,
        maximum: sorted[sorted.len() - 1],
        mean_absolute_deviation,
        robust_mean_absolute_deviation,
        median_absolute_deviation,
        coefficient_of_variation: variance.sqrt() / mean,
        quartile_coefficient_of_dispersion: (p75 - p25) / (p75 + p25),
    }
}

/// Returns the q-th percentile of sorted values by linear interpolation.
pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = (sorted.len() - 1) as f64 * q / 100.0;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// Tags of [`compute_tagged`] without the `stat_` prefix, in output order.
pub(super) const NAMES: [&str; 18] = [
    "mean", "var", "skew", "kurt", "median", "min", "p10", "p90", "max", "iqr", "range", "mad",
    "rmad", "medad", "cov", "qcod", "energy", "rms",
];

/// Computes the 18 IBSI intensity-based statistics, tagged `stat_*`:
///
/// mean (Q4LE), variance m_2 (ECT3), skewness (KE2A), excess kurtosis m_4/m_2² − 3 (IPH6),
/// median (Y12H), minimum (1GSF), P10 (QG58), P90 (8DWT), maximum (84IY), interquartile
/// range P75 − P25 (SALO), range (2OJQ), mean absolute deviation (4FUA), robust mean
/// absolute deviation (1128), median absolute deviation (N72L), coefficient of variation
/// (7TET), quartile coefficient of dispersion (9S40), energy Σ X_k² (N8CA) and root mean
/// square √(Σ X_k² / N) (5ZWQ). Energy is not scaled by the voxel volume.
pub(super) fn compute_tagged(values: &[f64]) -> Vec<(String, f64)> {
    let stats = describe(values);
    let energy: f64 = values.iter().map(|x| x * x).sum();
    let rms = (energy / values.len() as f64).sqrt();
    super::tagged(
        "stat_",
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
            stats.p75 - stats.p25,
            stats.maximum - stats.minimum,
            stats.mean_absolute_deviation,
            stats.robust_mean_absolute_deviation,
            stats.median_absolute_deviation,
            stats.coefficient_of_variation,
            stats.quartile_coefficient_of_dispersion,
            energy,
            rms,
        ],
    )
}
