//! Quantisation of the lesion box: the padded box P, the normalisation
//! range (a, b) and the grid of levels L(x) that the windows read.

use ndarray::{Array3, s};

use super::EntropyError;
use super::settings::{Boundary, EntropySettings, IntensityRange};
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
    image_dims: [usize; 3],
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
            image_dims: dims,
        }
    }
}

/// The intensities and the mask on the padded box P, copied in `[i, j, k]`
/// order (k fastest), which is the order of every pass that reads them.
///
/// NIfTI volumes are stored with i fastest, so reading the image itself in
/// `[i, j, k]` order jumps a whole slice at each step. The copy reads it
/// once in memory order, and the passes then read a small contiguous array
/// in the same order and get the same values as from the image.
pub(super) struct PaddedValues {
    intensities: Vec<f64>,
    mask: Vec<bool>,
    low: [usize; 3],
    strides: [usize; 3],
}

impl PaddedValues {
    pub(super) fn new(image: &Volume, roi: &Roi, padded: &PaddedBox) -> Self {
        let (low, high) = (padded.padded_low, padded.padded_high);
        let dims: [usize; 3] = std::array::from_fn(|a| high[a] - low[a] + 1);
        PaddedValues {
            intensities: copy_box(&image.data, low, high),
            mask: copy_box(&roi.mask, low, high),
            low,
            strides: [dims[1] * dims[2], dims[2], 1],
        }
    }

    /// Returns the intensity of the image voxel `voxel`, which must lie in
    /// P.
    pub(super) fn intensity(&self, voxel: [usize; 3]) -> f64 {
        self.intensities[self.offset(voxel)]
    }

    /// Returns whether the image voxel `voxel`, which must lie in P, is in
    /// the ROI.
    pub(super) fn in_roi(&self, voxel: [usize; 3]) -> bool {
        self.mask[self.offset(voxel)]
    }

    fn offset(&self, voxel: [usize; 3]) -> usize {
        (0..3)
            .map(|a| (voxel[a] - self.low[a]) * self.strides[a])
            .sum()
    }

    /// Returns the intensity and the ROI flag of every voxel of P in
    /// `[i, j, k]` order.
    fn voxels(&self) -> impl Iterator<Item = (f64, bool)> + '_ {
        self.intensities
            .iter()
            .copied()
            .zip(self.mask.iter().copied())
    }
}

/// Slices along k that [`copy_box`] transposes together, so that each
/// write fills a run of 8 consecutive values (one 64-byte cache line of
/// `f64`) while the reads follow 8 columns along i in memory order.
const TRANSPOSE_TILE: usize = 8;

/// Copies `array` on the inclusive box `low..=high` into a vector in
/// `[i, j, k]` order. When axis 0 has the smaller stride (NIfTI), the
/// loops run along i in tiles of k slices, so that both the reads and the
/// writes go through memory nearly in order. Otherwise k is innermost.
fn copy_box<T: Copy + Default>(array: &Array3<T>, low: [usize; 3], high: [usize; 3]) -> Vec<T> {
    let view = array.slice(s![low[0]..=high[0], low[1]..=high[1], low[2]..=high[2]]);
    let (ni, nj, nk) = view.dim();
    let position = |i: usize, j: usize, k: usize| (i * nj + j) * nk + k;
    let mut copy = vec![T::default(); ni * nj * nk];
    if view.strides()[0].unsigned_abs() < view.strides()[2].unsigned_abs() {
        for tile_start in (0..nk).step_by(TRANSPOSE_TILE) {
            let tile = tile_start..(tile_start + TRANSPOSE_TILE).min(nk);
            for j in 0..nj {
                for i in 0..ni {
                    for k in tile.clone() {
                        copy[position(i, j, k)] = view[[i, j, k]];
                    }
                }
            }
        }
    } else {
        for i in 0..ni {
            for j in 0..nj {
                for k in 0..nk {
                    copy[position(i, j, k)] = view[[i, j, k]];
                }
            }
        }
    }
    copy
}

/// Rejects NaN or infinite intensities among those the map reads: the ROI
/// always, and the padded box when the range or the boundary reads it.
pub(super) fn check_finite(
    values: &PaddedValues,
    config: &EntropySettings,
) -> Result<(), EntropyError> {
    let reads_box = config.range == IntensityRange::Box || config.boundary != Boundary::Masked;
    let count = values
        .voxels()
        .filter(|&(intensity, in_roi)| (reads_box || in_roi) && !intensity.is_finite())
        .count();
    if count > 0 {
        Err(EntropyError::NonFiniteIntensity { count })
    } else {
        Ok(())
    }
}

pub(super) fn normalisation_range(values: &PaddedValues, config: &EntropySettings) -> (f64, f64) {
    let roi_values = values
        .voxels()
        .filter(|&(_, in_roi)| in_roi)
        .map(|(intensity, _)| intensity);
    match config.range {
        IntensityRange::Box => min_max(values.voxels().map(|(intensity, _)| intensity)),
        IntensityRange::Roi => min_max(roi_values),
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

/// Returns the min and max of `values`. Zero and minus zero compare equal,
/// so which of them comes out depends on the order of `values`.
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
        (low.min(v), high.max(v))
    })
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
        values: &PaddedValues,
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
        let image_dims = padded.image_dims;

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
                        if boundary == Boundary::Masked && !values.in_roi(voxel) {
                            sentinel
                        } else {
                            quantiser.level(values.intensity(voxel))
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
                                quantiser.level(values.intensity(voxel))
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
