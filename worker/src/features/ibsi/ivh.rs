//! IBSI intensity-volume histogram (IVH) features.
//!
//! The intensities are binned with width w from the lower end of the range G = [G_lo, G_hi]:
//! bin i = ⌊(X − G_lo)/w⌋ + 1 has intensity X_i = G_lo + (i − 1) w, for i = 1 … N_b with
//! N_b = ⌊(G_hi − G_lo)/w⌋ + 1. This is the IBSI case of discrete intensities (w = 1 for CT
//! in HU or the digital phantom). The fractional volume ν_i is the fraction of ROI voxels
//! in bins ≥ i, and the intensity fraction is γ_i = (X_i − G_lo)/(G_hi − G_lo).
//!
//! - V_x = max{ν_i : γ_i ≥ x}, the volume fraction with at least x of the intensity
//!   range (IBSI BC2M; V10 is instance NK6P, V90 is 4279);
//! - I_x = min{X_i : ν_i ≤ x}, the lowest intensity that at most x of the volume reaches
//!   (IBSI GBPN; I10 is PWN1, I90 is BOHI). When every ν_i > x, I_x = G_hi + w, the
//!   first intensity above the range, where ν = 0;
//! - V10 − V90 (DDTU, instance WITY) and I10 − I90 (CNV2, instance JXJA).
//!
//! NOTE: IBSI's "continuous" IVH (bin centres, as for CT phantom configuration C) and its
//! fixed-bin-number "arbitrary units" case (configuration E) are not implemented.

use super::IbsiError;
use super::grey_levels::RoiGrid;

/// IVH binning.
#[derive(Debug, Clone, PartialEq)]
pub struct IvhSettings {
    /// Bin width w in intensity units; finite and > 0.
    pub bin_width: f64,
    /// Intensity range G = [G_lo, G_hi]; none uses the ROI minimum and maximum. Every ROI
    /// intensity must lie in it.
    pub range: Option<[f64; 2]>,
}

/// Tags of [`compute`] without the `ivh_` prefix, in output order.
pub(super) const NAMES: [&str; 6] = ["v10", "v90", "i10", "i90", "diff_v10_v90", "diff_i10_i90"];

/// Computes the six IBSI IVH features, tagged `ivh_v10`, `ivh_v90`, `ivh_i10`, `ivh_i90`,
/// `ivh_diff_v10_v90` and `ivh_diff_i10_i90`.
pub(super) fn compute(
    grid: &RoiGrid,
    settings: &IvhSettings,
) -> Result<Vec<(String, f64)>, IbsiError> {
    let values = grid.roi_intensities();
    let width = settings.bin_width;
    if !(width.is_finite() && width > 0.0) {
        return Err(IbsiError::InvalidSetting {
            field: "ivh bin_width",
            value: width,
            reason: "it must be a finite number > 0",
        });
    }
    let minimum = values.iter().copied().fold(f64::INFINITY, f64::min);
    let maximum = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let [low, high] = settings.range.unwrap_or([minimum, maximum]);
    if !(low.is_finite() && high.is_finite() && low <= minimum && maximum <= high) {
        return Err(IbsiError::InvalidSetting {
            field: "ivh range",
            value: if low > minimum { low } else { high },
            reason: "the range must be finite and contain every ROI intensity",
        });
    }

    let bins = ((high - low) / width).floor() as usize + 1;
    let mut counts = vec![0_usize; bins];
    for &value in &values {
        let bin = (((value - low) / width).floor() as usize).min(bins - 1);
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
