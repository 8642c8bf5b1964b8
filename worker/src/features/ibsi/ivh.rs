//! IBSI intensity-volume histogram (IVH) features.
//!
//! The ROI intensities X are first mapped to IVH intensities X_(d,gl) with an interval
//! w_d and a range G = [G_lo, G_hi], in one of the three IBSI cases ([`IvhSettings`]):
//!
//! - discrete calibrated intensities (CT in HU): X_(d,gl) = X, w_d as given (1 for HU),
//!   G from the re-segmentation range, with the ROI minimum or maximum for a missing bound;
//! - continuous calibrated intensities (for example PET): fixed bin size w from X_min to
//!   X_max (the re-segmentation bounds, or the ROI minimum and maximum), bin numbers X_d =
//!   ⌊(X − X_min)/w⌋ + 1 replaced by the bin centres X_(d,gl) = X_min + (X_d − ½) w, so
//!   w_d = w and G = [X_min + w/2, X_max − w/2];
//! - arbitrary intensity units: fixed bin number N over the ROI's range, X_(d,gl) = X_d,
//!   w_d = 1 and G = [1, N].
//!
//! Bin i = ⌊(X_(d,gl) − G_lo)/w_d⌋ + 1 has intensity X_i = G_lo + (i − 1) w_d, for i = 1 …
//! N_b with N_b = ⌊(G_hi − G_lo)/w_d⌋ + 1; a value above G_hi falls into bin N_b. The
//! fractional volume ν_i is the fraction of ROI voxels in bins ≥ i, and the intensity
//! fraction is γ_i = (X_i − G_lo)/(G_hi − G_lo).
//!
//! - V_x = max{ν_i : γ_i ≥ x}, the volume fraction with at least x of the intensity
//!   range (IBSI BC2M; V10 is instance NK6P, V90 is 4279);
//! - I_x = min{X_i : ν_i ≤ x}, the lowest intensity that at most x of the volume reaches
//!   (IBSI GBPN; I10 is PWN1, I90 is BOHI). When every ν_i > x, I_x = G_hi + w_d, the
//!   first intensity above the range, where ν = 0;
//! - V10 − V90 (DDTU, instance WITY) and I10 − I90 (CNV2, instance JXJA).

use super::IbsiError;
use super::grey_levels::RoiGrid;

/// IVH discretisation: the IBSI case that fits the image's intensities.
#[derive(Debug, Clone, PartialEq)]
pub enum IvhSettings {
    /// Discrete calibrated intensities, used as they are.
    Discrete {
        /// Interval w_d between IVH intensities; finite and > 0 (1 for CT in HU).
        interval: f64,
        /// Lower end of G; none uses the ROI minimum.
        lower: Option<f64>,
        /// Upper end of G; none uses the ROI maximum.
        upper: Option<f64>,
    },
    /// Continuous calibrated intensities, binned with a fixed bin size and represented
    /// by the bin centres.
    BinCentres {
        /// Bin width w; finite and > 0.
        width: f64,
        /// X_min, where bin 1 starts; none uses the ROI minimum.
        lower: Option<f64>,
        /// X_max; none uses the ROI maximum.
        upper: Option<f64>,
    },
    /// Arbitrary intensity units, binned with a fixed bin number N over the ROI's range.
    BinNumbers {
        /// Number of bins N ≥ 1 (IBSI recommends 1000).
        count: u32,
    },
}

impl IvhSettings {
    /// Returns the discrete case with interval 1 over the ROI's range, IBSI's choice for
    /// CT intensities in HU without a re-segmentation range.
    pub fn discrete_unit() -> Self {
        IvhSettings::Discrete {
            interval: 1.0,
            lower: None,
            upper: None,
        }
    }
}

/// Tags of [`compute`] without the `ivh_` prefix, in output order.
pub(super) const NAMES: [&str; 6] = ["v10", "v90", "i10", "i90", "diff_v10_v90", "diff_i10_i90"];

/// Computes the six IBSI IVH features, tagged `ivh_v10`, `ivh_v90`, `ivh_i10`, `ivh_i90`,
/// `ivh_diff_v10_v90` and `ivh_diff_i10_i90`.
pub(super) fn compute(
    grid: &RoiGrid,
    settings: &IvhSettings,
) -> Result<Vec<(String, f64)>, IbsiError> {
    let raw = grid.roi_intensities();
    let minimum = raw.iter().copied().fold(f64::INFINITY, f64::min);
    let maximum = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let check_width = |field: &'static str, width: f64| {
        if width.is_finite() && width > 0.0 {
            Ok(())
        } else {
            Err(IbsiError::InvalidSetting {
                field,
                value: width,
                reason: "it must be a finite number > 0",
            })
        }
    };
    let check_range = |low: f64, high: f64| {
        if low.is_finite() && high.is_finite() && low <= minimum && maximum <= high {
            Ok(())
        } else {
            Err(IbsiError::InvalidSetting {
                field: "ivh range",
                value: if low > minimum { low } else { high },
                reason: "the range must be finite and contain every ROI intensity",
            })
        }
    };

    let (values, low, high, width) = match *settings {
        IvhSettings::Discrete {
            interval,
            lower,
            upper,
        } => {
            check_width("ivh interval", interval)?;
            let (low, high) = (lower.unwrap_or(minimum), upper.unwrap_or(maximum));
            check_range(low, high)?;
            (raw, low, high, interval)
        }
        IvhSettings::BinCentres {
            width,
            lower,
            upper,
        } => {
            check_width("ivh bin width", width)?;
            let (start, end) = (lower.unwrap_or(minimum), upper.unwrap_or(maximum));
            check_range(start, end)?;
            let centres = raw
                .iter()
                .map(|&x| start + (((x - start) / width).floor() + 0.5) * width)
                .collect();
            (centres, start + 0.5 * width, end - 0.5 * width, width)
        }
        IvhSettings::BinNumbers { count } => {
            if count == 0 {
                return Err(IbsiError::InvalidSetting {
                    field: "ivh bin number",
                    value: 0.0,
                    reason: "it must be at least 1",
                });
            }
            let bins = f64::from(count);
            let range = maximum - minimum;
            let numbers = raw
                .iter()
                .map(|&x| {
                    if range <= 0.0 {
                        1.0
                    } else {
                        (bins * (x - minimum) / range).floor().min(bins - 1.0) + 1.0
                    }
                })
                .collect();
            (numbers, 1.0, bins, 1.0)
        }
    };

    let bins = ((high - low).max(0.0) / width).floor() as usize + 1;
    let mut counts = vec![0_usize; bins];
    for &value in &values {
        // Bin centres lie exactly on X_i in exact arithmetic; 1e-9 keeps a quotient such
        // as 2.9999999999 in bin 3.
        let position = ((value - low) / width + 1e-9).floor().max(0.0);
        let bin = (position as usize).min(bins - 1);
        counts[bin] += 1;
    }

    // ν_i for i = 1 … N_b, then ν = 0 one bin above the range.
    let total = values.len() as f64;
    let mut at_or_above = values.len();
    let mut curve = Vec::with_capacity(bins + 1);
    for (bin, &count) in counts.iter().enumerate() {
        curve.push((low + bin as f64 * width, at_or_above as f64 / total));
        at_or_above -= count;
    }
    curve.push((low + bins as f64 * width, 0.0));

    let span = high - low;
    let volume_at = |x: f64| {
        curve
            .iter()
            .filter(|(intensity, _)| span > 0.0 && (intensity - low) / span >= x)
            .map(|&(_, fraction)| fraction)
            .fold(0.0, f64::max)
    };
    let intensity_at = |x: f64| {
        curve
            .iter()
            .find(|&&(_, fraction)| fraction <= x)
            .map_or(high + width, |&(intensity, _)| intensity)
    };

    let v10 = volume_at(0.10);
    let v90 = volume_at(0.90);
    let i10 = intensity_at(0.10);
    let i90 = intensity_at(0.90);
    Ok(super::tagged(
        "ivh_",
        "",
        NAMES,
        [v10, v90, i10, i90, v10 - v90, i10 - i90],
    ))
}
