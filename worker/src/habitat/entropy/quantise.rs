//! Quantisation of the lesion box: the padded box P, the normalisation
//! range (a, b) and the grid of levels L(x) that the windows read.

use super::settings::{Boundary, EntropySettings, IntensityRange};
use super::{EntropyError, dims_of};
use crate::image::Volume;
use crate::mask::Roi;

/// The lesion box B and the padded box P, inclusive bounds per axis.
pub(super) struct PaddedBox {
    roi_low: [usize; 3],
    roi_high: [usize; 3],
    /// Window half-width h along each axis.
    half: [usize; 3],
    padded_low: [usize; 3],
    padded_high: [usize; 3],
}

impl PaddedBox {
    pub(super) fn new(
        low: [usize; 3],
        high: [usize; 3],
        half: [usize; 3],
        dims: [usize; 3],
    ) -> Self {
        PaddedBox {
            roi_low: low,
            roi_high: high,
            half,
            padded_low: std::array::from_fn(|a| low[a].saturating_sub(half[a])),
            padded_high: std::array::from_fn(|a| (high[a] + half[a]).min(dims[a] - 1)),
        }
    }

    fn padded_voxels(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        let (l, h) = (self.padded_low, self.padded_high);
        (l[0]..=h[0]).flat_map(move |i| {
            (l[1]..=h[1]).flat_map(move |j| (l[2]..=h[2]).map(move |k| [i, j, k]))
        })
    }
}

/// Rejects NaN or infinite intensities among those the map reads: the ROI
/// always, and the padded box when the range or the boundary reads it.
pub(super) fn check_finite(
    image: &Volume,
    roi: &Roi,
    padded: &PaddedBox,
    config: &EntropySettings,
) -> Result<(), EntropyError> {
    let reads_box = config.range == IntensityRange::Box || config.boundary != Boundary::Masked;
    let count = padded
        .padded_voxels()
        .filter(|&voxel| (reads_box || roi.mask[voxel]) && !image.data[voxel].is_finite())
        .count();
    if count > 0 {
        Err(EntropyError::NonFiniteIntensity { count })
    } else {
        Ok(())
    }
}

pub(super) fn normalisation_range(
    image: &Volume,
    roi: &Roi,
    padded: &PaddedBox,
    config: &EntropySettings,
) -> (f64, f64) {
    let min_max = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
            (low.min(v), high.max(v))
        })
    };
    let mut roi_values = padded
        .padded_voxels()
        .filter(|&voxel| roi.mask[voxel])
        .map(|voxel| image.data[voxel]);
    match config.range {
        IntensityRange::Box => min_max(&mut padded.padded_voxels().map(|voxel| image.data[voxel])),
        IntensityRange::Roi => min_max(&mut roi_values),
        IntensityRange::RoiPercentile => {
            let mut sorted: Vec<f64> = roi_values.collect();
            sorted.sort_by(f64::total_cmp);
            (
                percentile(&sorted, config.percentile_low),
                percentile(&sorted, config.percentile_high),
            )
        }
    }
}

/// Returns the p-th percentile (0 ≤ p ≤ 100) of sorted values by linear
/// interpolation between the order statistics at ranks ⌊r⌋ and ⌈r⌉, with
/// r = p/100 · (n − 1) (Hyndman and Fan's type 7, numpy's default).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = rank - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// Maps intensities to [0, 1] and to levels 0..N_b.
pub(super) struct Quantiser {
    low: f64,
    width: f64,
    top_level: f64,
}

impl Quantiser {
    pub(super) fn new(range: (f64, f64), bins: usize) -> Self {
        Quantiser {
            low: range.0,
            width: range.1 - range.0,
            top_level: (bins - 1) as f64,
        }
    }

    pub(super) fn normalise(&self, value: f64) -> f64 {
        if self.width > 0.0 {
            ((value - self.low) / self.width).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    fn level(&self, value: f64) -> u16 {
        (self.normalise(value) * self.top_level).round() as u16
    }
}

/// Quantised levels on the lesion box B grown by h on every side, without
/// clipping, so that every window of a ROI voxel lies inside it. Positions
/// that count in no cell contain the sentinel level N_b.
pub(super) struct LevelGrid {
    pub(super) levels: Vec<u16>,
    pub(super) strides: [usize; 3],
    pub(super) half: [usize; 3],
    pub(super) bins: usize,
    pub(super) boundary: Boundary,
    pub(super) window_positions: usize,
}

impl LevelGrid {
    pub(super) fn new(
        image: &Volume,
        roi: &Roi,
        padded: &PaddedBox,
        quantiser: &Quantiser,
        boundary: Boundary,
    ) -> Self {
        let half = padded.half;
        let dims: [usize; 3] =
            std::array::from_fn(|a| padded.roi_high[a] - padded.roi_low[a] + 1 + 2 * half[a]);
        let strides = [dims[1] * dims[2], dims[2], 1];
        let bins = (quantiser.top_level as usize) + 1;
        let sentinel = bins as u16;
        let image_dims = dims_of(&image.data);

        let mut levels = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
        for gi in 0..dims[0] {
            for gj in 0..dims[1] {
                for gk in 0..dims[2] {
                    // Image coordinates of this grid position: B starts at
                    // grid offset h.
                    let position = [gi, gj, gk];
                    let coordinates: [i64; 3] = std::array::from_fn(|a| {
                        padded.roi_low[a] as i64 - half[a] as i64 + position[a] as i64
                    });
                    let inside_image = (0..3)
                        .all(|a| coordinates[a] >= 0 && coordinates[a] < image_dims[a] as i64);
                    let level = if inside_image {
                        let voxel = coordinates.map(|c| c as usize);
                        if boundary == Boundary::Masked && !roi.mask[voxel] {
                            sentinel
                        } else {
                            quantiser.level(image.data[voxel])
                        }
                    } else {
                        match boundary {
                            Boundary::BoxSymmetric => {
                                let voxel: [usize; 3] = std::array::from_fn(|a| {
                                    mirror(
                                        coordinates[a],
                                        padded.padded_low[a],
                                        padded.padded_high[a],
                                    )
                                });
                                quantiser.level(image.data[voxel])
                            }
                            Boundary::Masked | Boundary::BoxZero => sentinel,
                        }
                    };
                    levels.push(level);
                }
            }
        }
        let window_positions = (0..3).map(|a| 2 * half[a] + 1).product();
        LevelGrid {
            levels,
            strides,
            half,
            bins,
            boundary,
            window_positions,
        }
    }

    pub(super) fn index(&self, position: [usize; 3]) -> usize {
        (0..3).map(|a| position[a] * self.strides[a]).sum()
    }
}

/// Reflects coordinate `x` into [low, high] with the edge voxel repeated
/// (…, low+1, low, low, low+1, …), periodically for any distance.
fn mirror(x: i64, low: usize, high: usize) -> usize {
    let length = (high - low + 1) as i64;
    let mut offset = (x - low as i64).rem_euclid(2 * length);
    if offset >= length {
        offset = 2 * length - 1 - offset;
    }
    low + offset as usize
}
