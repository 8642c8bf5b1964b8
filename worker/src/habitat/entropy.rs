//! Local entropy maps of a lesion: for each ROI voxel, the Shannon entropy
//! of the quantised intensities in a cubic window around it.
//!
//! Steps, for an image and its ROI M:
//!
//! 1. Box. B is the bounding box of M. The padded box P is B grown by the
//!    window half-width h on each side and clipped to the image.
//! 2. Intensity map. Ĩ(x) = (x − a) / (b − a), clipped to [0, 1], with
//!    (a, b) from [`IntensityRange`]: min and max over P (default), over M,
//!    or the 0.5th and 99.5th percentiles over M. If b = a, every Ĩ is 0.
//! 3. Quantisation. L(x) = round(Ĩ(x) · (N_b − 1)) ∈ {0, …, N_b − 1},
//!    rounding half away from zero as MATLAB's `round` and `im2uint8` do.
//!    (numpy's `round` rounds half to even; the two differ only on exact
//!    ties.)
//! 4. Window. W(v) is the cube of edge 2h + 1 voxels centred at v, or the
//!    square of that edge in the slice through v for the 2-D slice-wise
//!    option.
//! 5. Entropy. With n_l the number of window positions at level l and N the
//!    divisor of [`Boundary`], E(v) = −Σ_{l: n_l > 0} (n_l / N) log(n_l / N),
//!    in bits (log₂, default) or nats.
//! 6. Rescaling inside the lesion. Ê(v) = (E(v) − min_M E) / (max_M E −
//!    min_M E), and Ê ≡ 0 when max = min.
//!
//! Cost. The window histogram slides along one axis, the last axis with a
//! window extent above 1 (k in 3-D), so each step adds one plane of the
//! window and removes another: O(|W| / edge) updates per step instead of
//! O(|W|). Each line of the lesion box that contains ROI voxels starts with
//! one full window at its first ROI voxel and slides to its last, across
//! any gaps. Each update also adjusts the sum S = Σ_l n_l log₂ n_l, held
//! exactly in 46-bit fixed point, and E(v) = (C log₂ N − S) / N is read
//! from it in O(1), so E(v) depends only on the histogram and never on the
//! path the window took. In 3-D the total is O(S_p · edge² + lines ·
//! edge³), with S_p ≥ |M| the positions slid over.
//!
//! Sources:
//!
//! - MATLAB `entropyfilt` documentation (MathWorks): 9-by-9 default
//!   neighbourhood, symmetric padding at the border. Octave `entropyfilt`
//!   help: 256 histogram cells for non-logical input, zero cells ignored.
//! - The reference recipe, `Demo_subregion_partition.m` in the repository
//!   WenbingLv/Subregional-Radiomics: bounding box, min–max normalisation,
//!   `entropyfilt` with a 9 × 9 × 9 neighbourhood, entropy re-normalised
//!   inside the tumour.
//! - HABIT's `LocalEntropyExtractor` (repository lichao312214129/HABIT):
//!   zero padding with the full window volume as divisor.

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use super::depth::bounding_box;
use crate::image::Volume;
use crate::mask::Roi;

/// Default window edge in voxels (the reference recipe's 9 × 9 × 9).
pub const DEFAULT_WINDOW_EDGE: usize = 9;
/// Smallest window edge accepted.
pub const MIN_WINDOW_EDGE: usize = 3;
/// Largest window edge accepted.
pub const MAX_WINDOW_EDGE: usize = 15;
/// Default number of histogram cells N_b (MATLAB's 8-bit conversion).
pub const DEFAULT_BINS: usize = 256;
/// Smallest N_b accepted.
pub const MIN_BINS: usize = 8;
/// Largest N_b accepted.
pub const MAX_BINS: usize = 256;

/// Rule for the window positions that count and for the divisor N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    /// Only positions in M count, and N = |W(v) ∩ M|, as PyRadiomics'
    /// voxel-based extraction with its default masked kernel. Entropy
    /// describes lesion tissue only.
    #[default]
    Masked,
    /// Every position counts and N = |W|. Positions outside P (which, for
    /// windows of ROI voxels, lie beyond the image border) take the value
    /// of their mirror image in P, the edge voxel repeated, as MATLAB
    /// `padarray(..., 'symmetric')` and `entropyfilt` do.
    BoxSymmetric,
    /// Positions beyond the image border count in no cell, but N = |W|, as
    /// a convolution with zero padding does (HABIT).
    BoxZero,
}

/// The range (a, b) that maps intensities to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntensityRange {
    /// Min and max over the padded box P.
    #[default]
    Box,
    /// Min and max over the ROI.
    Roi,
    /// The `percentile_low` and `percentile_high` percentiles over the ROI,
    /// by linear interpolation between order statistics (numpy's default).
    /// Values outside the range are clipped.
    RoiPercentile,
}

/// Window shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Dimensionality {
    /// A cube of edge `window_edge`.
    #[default]
    #[serde(rename = "3d")]
    Volume,
    /// A square of edge `window_edge` within each slice normal to
    /// `slice_axis`, so no window crosses into another slice.
    #[serde(rename = "2d")]
    Slices,
}

/// Logarithm base of the entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LogBase {
    /// Bits.
    #[default]
    #[serde(rename = "2")]
    Two,
    /// Nats.
    #[serde(rename = "e")]
    E,
}

/// Settings of the local entropy map, as written in a configuration. Turn
/// them into [`ValidEntropySettings`] with [`EntropySettings::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropySettings {
    /// 3-D cubes (default) or 2-D squares per slice.
    pub dimensionality: Dimensionality,
    /// Voxel axis normal to the slices of the 2-D option: 0 (i), 1 (j) or
    /// 2 (k, default). Unused in 3-D.
    pub slice_axis: usize,
    /// Window edge in voxels, 3 to 15; an even value is raised by one.
    /// Default 9.
    pub window_edge: usize,
    /// Histogram cells N_b, 8 to 256. Default 256.
    pub bins: usize,
    /// Logarithm base. Default 2 (bits).
    pub log_base: LogBase,
    /// Boundary handling. Default `masked`.
    pub boundary: Boundary,
    /// Normalisation range. Default `box`.
    pub range: IntensityRange,
    /// Lower percentile (0 to 100) for `roi_percentile`. Default 0.5.
    pub percentile_low: f64,
    /// Upper percentile (0 to 100) for `roi_percentile`. Default 99.5.
    pub percentile_high: f64,
}

impl Default for EntropySettings {
    fn default() -> Self {
        EntropySettings {
            dimensionality: Dimensionality::Volume,
            slice_axis: 2,
            window_edge: DEFAULT_WINDOW_EDGE,
            bins: DEFAULT_BINS,
            log_base: LogBase::Two,
            boundary: Boundary::Masked,
            range: IntensityRange::Box,
            percentile_low: 0.5,
            percentile_high: 99.5,
        }
    }
}

/// A setting of [`EntropySettings`] out of range, one variant per setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntropySettingsError {
    /// The window edge is outside 3..=15 after raising an even value.
    #[error(
        "window_edge = {value} is invalid; expected {MIN_WINDOW_EDGE} to {MAX_WINDOW_EDGE} voxels (an even value is raised by one)"
    )]
    InvalidWindowEdge {
        /// The configured value.
        value: usize,
    },
    /// N_b is outside 8..=256.
    #[error("bins = {value} is invalid; expected {MIN_BINS} to {MAX_BINS} histogram cells")]
    InvalidBins {
        /// The configured value.
        value: usize,
    },
    /// The slice axis is not 0, 1 or 2.
    #[error("slice_axis = {value} is invalid; expected 0 (i), 1 (j) or 2 (k)")]
    InvalidSliceAxis {
        /// The configured value.
        value: usize,
    },
    /// The percentiles are not 0 ≤ low < high ≤ 100.
    #[error(
        "percentile_low = {low} and percentile_high = {high} are invalid; expected 0 ≤ percentile_low < percentile_high ≤ 100"
    )]
    InvalidPercentiles {
        /// The configured lower percentile.
        low: f64,
        /// The configured upper percentile.
        high: f64,
    },
}

impl EntropySettings {
    /// Checks every setting and returns the settings that
    /// [`local_entropy`] accepts.
    pub fn validate(&self) -> Result<ValidEntropySettings, EntropySettingsError> {
        let edge = self.window_edge + (1 - self.window_edge % 2);
        if !(MIN_WINDOW_EDGE..=MAX_WINDOW_EDGE).contains(&edge) {
            return Err(EntropySettingsError::InvalidWindowEdge {
                value: self.window_edge,
            });
        }
        if !(MIN_BINS..=MAX_BINS).contains(&self.bins) {
            return Err(EntropySettingsError::InvalidBins { value: self.bins });
        }
        if self.slice_axis > 2 {
            return Err(EntropySettingsError::InvalidSliceAxis {
                value: self.slice_axis,
            });
        }
        let (low, high) = (self.percentile_low, self.percentile_high);
        if !(low.is_finite() && high.is_finite() && 0.0 <= low && low < high && high <= 100.0) {
            return Err(EntropySettingsError::InvalidPercentiles { low, high });
        }
        Ok(ValidEntropySettings {
            settings: self.clone(),
            edge,
        })
    }
}

/// [`EntropySettings`] whose values have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEntropySettings {
    settings: EntropySettings,
    edge: usize,
}

impl ValidEntropySettings {
    /// Returns the window edge in voxels: odd, 3 to 15.
    pub fn window_edge(&self) -> usize {
        self.edge
    }

    /// Returns the settings as configured.
    pub fn settings(&self) -> &EntropySettings {
        &self.settings
    }

    /// Returns the window half-width along each axis: (edge − 1) / 2, and 0
    /// along the slice axis of the 2-D option.
    fn half_widths(&self) -> [usize; 3] {
        let half = (self.edge - 1) / 2;
        let mut widths = [half; 3];
        if self.settings.dimensionality == Dimensionality::Slices {
            widths[self.settings.slice_axis] = 0;
        }
        widths
    }
}

/// An error from [`local_entropy`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntropyError {
    /// The image and the mask have different sizes.
    #[error("image size {image:?} differs from mask size {mask:?}")]
    ShapeMismatch {
        /// Image size (i, j, k).
        image: [usize; 3],
        /// Mask size (i, j, k).
        mask: [usize; 3],
    },
    /// The ROI has no voxel.
    #[error("the ROI is empty; a local entropy map needs at least one voxel")]
    EmptyRoi,
    /// Intensities that the map reads are NaN or infinite.
    #[error("{count} intensities in the lesion box are NaN or infinite")]
    NonFiniteIntensity {
        /// Number of non-finite values read.
        count: usize,
    },
}

/// The local entropy features of each ROI voxel.
///
/// Every vector is in ROI voxel order: `[i, j, k]` lexicographic (k
/// fastest), the order of `Array3::indexed_iter` over the mask and of
/// [`super::depth::RoiDepth`].
#[derive(Debug, Clone, PartialEq)]
pub struct EntropyMap {
    /// Index (i, j, k) of each ROI voxel.
    pub voxels: Vec<[usize; 3]>,
    /// Normalised intensity Ĩ(v) ∈ [0, 1].
    pub intensity: Vec<f64>,
    /// Local entropy E(v), in bits or nats as the settings' `log_base`.
    pub entropy: Vec<f64>,
    /// Entropy rescaled within the lesion, Ê(v) ∈ [0, 1].
    pub entropy_rescaled: Vec<f64>,
    /// The normalisation range (a, b) in image intensity units.
    pub range: (f64, f64),
    /// Positions in a full window, |W| = edge³ (3-D) or edge² (2-D).
    pub window_positions: usize,
}

/// Computes Ĩ, E and Ê for every ROI voxel. The module documentation
/// defines the steps.
pub fn local_entropy(
    image: &Volume,
    roi: &Roi,
    settings: &ValidEntropySettings,
) -> Result<EntropyMap, EntropyError> {
    let image_dims = dims_of(&image.data);
    let mask_dims = dims_of(&roi.mask);
    if image_dims != mask_dims {
        return Err(EntropyError::ShapeMismatch {
            image: image_dims,
            mask: mask_dims,
        });
    }
    let (low, high) = bounding_box(&roi.mask).ok_or(EntropyError::EmptyRoi)?;
    let half = settings.half_widths();
    let padded = PaddedBox::new(low, high, half, image_dims);
    let config = &settings.settings;

    check_finite(image, roi, &padded, config)?;
    let range = normalisation_range(image, roi, &padded, config);
    let quantiser = Quantiser::new(range, config.bins);

    let grid = LevelGrid::new(image, roi, &padded, &quantiser, config.boundary);
    let roi_voxels = RoiVoxels::new(roi, low, high);
    let intensity = roi_voxels
        .voxels
        .iter()
        .map(|&voxel| quantiser.normalise(image.data[voxel]))
        .collect();

    let mut entropy = sliding_entropy(&grid, &roi_voxels);
    if config.log_base == LogBase::E {
        for value in &mut entropy {
            *value *= std::f64::consts::LN_2;
        }
    }
    let entropy_rescaled = rescale(&entropy);

    Ok(EntropyMap {
        voxels: roi_voxels.voxels,
        intensity,
        entropy,
        entropy_rescaled,
        range,
        window_positions: grid.window_positions,
    })
}

fn dims_of<T>(array: &Array3<T>) -> [usize; 3] {
    let (a, b, c) = array.dim();
    [a, b, c]
}

/// The lesion box B and the padded box P, inclusive bounds per axis.
struct PaddedBox {
    roi_low: [usize; 3],
    roi_high: [usize; 3],
    /// Window half-width h along each axis.
    half: [usize; 3],
    padded_low: [usize; 3],
    padded_high: [usize; 3],
}

impl PaddedBox {
    fn new(low: [usize; 3], high: [usize; 3], half: [usize; 3], dims: [usize; 3]) -> Self {
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
fn check_finite(
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

fn normalisation_range(
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
struct Quantiser {
    low: f64,
    width: f64,
    top_level: f64,
}

impl Quantiser {
    fn new(range: (f64, f64), bins: usize) -> Self {
        Quantiser {
            low: range.0,
            width: range.1 - range.0,
            top_level: (bins - 1) as f64,
        }
    }

    fn normalise(&self, value: f64) -> f64 {
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
struct LevelGrid {
    levels: Vec<u16>,
    strides: [usize; 3],
    half: [usize; 3],
    bins: usize,
    boundary: Boundary,
    window_positions: usize,
}

impl LevelGrid {
    fn new(
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

    fn index(&self, position: [usize; 3]) -> usize {
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

/// ROI voxels in lexicographic order, with each one's output position.
struct RoiVoxels {
    voxels: Vec<[usize; 3]>,
    /// Output position of each voxel of B (row-major over B), or
    /// `u32::MAX` outside the ROI.
    ordinal: Vec<u32>,
    /// Size of B along i, j, k.
    extent: [usize; 3],
}

impl RoiVoxels {
    fn new(roi: &Roi, low: [usize; 3], high: [usize; 3]) -> Self {
        let extent: [usize; 3] = std::array::from_fn(|a| high[a] - low[a] + 1);
        let mut voxels = Vec::with_capacity(roi.voxel_count);
        let mut ordinal = Vec::with_capacity(extent.iter().product());
        for i in low[0]..=high[0] {
            for j in low[1]..=high[1] {
                for k in low[2]..=high[2] {
                    if roi.mask[[i, j, k]] {
                        ordinal.push(voxels.len() as u32);
                        voxels.push([i, j, k]);
                    } else {
                        ordinal.push(u32::MAX);
                    }
                }
            }
        }
        RoiVoxels {
            voxels,
            ordinal,
            extent,
        }
    }

    /// Output position of the voxel at offset `position` within B.
    fn ordinal(&self, position: [usize; 3]) -> Option<usize> {
        let index = (position[0] * self.extent[1] + position[1]) * self.extent[2] + position[2];
        let ordinal = self.ordinal[index];
        (ordinal != u32::MAX).then_some(ordinal as usize)
    }
}

/// Binary digits after the point in the fixed-point n·log₂ n values of
/// [`Histogram`]. The largest sum, |W| log₂ |W| ≤ 3375 · 11.73 < 2¹⁶ for a
/// 15³ window, times 2⁴⁶ stays below 2⁶², inside `i64`.
const FIXED_POINT_BITS: i32 = 46;

/// A window histogram with the sentinel cell last, and the running sum
/// S = Σ_l n_l log₂ n_l over the non-sentinel cells.
///
/// S is kept in fixed point, each term n log₂ n rounded to a multiple of
/// 2⁻⁴⁶ from a table. Integer sums are exact, so S, and the entropy read
/// from it, depend only on the counts and never on the order of the
/// updates, while each update costs O(1) instead of a pass over the N_b
/// cells.
struct Histogram {
    counts: Vec<u32>,
    /// round(c log₂ c · 2⁴⁶) for c = 0..=|W|.
    n_log_n: Vec<i64>,
    /// n_log_n[c + 1] − n_log_n[c] for c = 0..|W|: the change of S when a
    /// cell's count goes from c to c + 1.
    increase: Vec<i64>,
    /// round(log₂ c · 2⁴⁶) for c = 0..=|W|; entry 0 is unused.
    log2: Vec<i64>,
    /// Σ n_log_n[n_l] over every cell, the sentinel included, so that an
    /// update needs no branch or mask on the cell. S is this sum minus the
    /// sentinel's term, taken when the entropy is read.
    sum_all_cells: i64,
    sentinel: usize,
}

impl Histogram {
    fn new(bins: usize, window_positions: usize) -> Self {
        let scale = 2f64.powi(FIXED_POINT_BITS);
        let fixed = |value: f64| (value * scale).round() as i64;
        let n_log_n: Vec<i64> = (0..=window_positions)
            .map(|c| {
                let count = c as f64;
                if c == 0 {
                    0
                } else {
                    fixed(count * count.log2())
                }
            })
            .collect();
        Histogram {
            counts: vec![0; bins + 1],
            increase: n_log_n.windows(2).map(|pair| pair[1] - pair[0]).collect(),
            n_log_n,
            log2: (0..=window_positions)
                .map(|c| if c == 0 { 0 } else { fixed((c as f64).log2()) })
                .collect(),
            sum_all_cells: 0,
            sentinel: bins,
        }
    }

    fn clear(&mut self) {
        self.counts.fill(0);
        self.sum_all_cells = 0;
    }

    /// Adds the window plane whose first position is `base`, given the
    /// plane's offsets.
    fn add_plane(&mut self, levels: &[u16], base: usize, offsets: &[usize]) {
        for &offset in offsets {
            self.add(levels[base + offset] as usize);
        }
    }

    /// Moves the window one step: removes the plane at `leaving` and adds
    /// the plane at `entering`. A position whose level is the same in both
    /// planes leaves the histogram unchanged and is skipped.
    fn slide(&mut self, levels: &[u16], leaving: usize, entering: usize, offsets: &[usize]) {
        for &offset in offsets {
            let (old, new) = (levels[leaving + offset], levels[entering + offset]);
            if old != new {
                self.remove(old as usize);
                self.add(new as usize);
            }
        }
    }

    fn add(&mut self, cell: usize) {
        let count = self.counts[cell] as usize;
        self.counts[cell] += 1;
        self.sum_all_cells += self.increase[count];
    }

    fn remove(&mut self, cell: usize) {
        let count = self.counts[cell] as usize;
        self.counts[cell] -= 1;
        self.sum_all_cells -= self.increase[count - 1];
    }

    /// Returns the entropy in bits, E = (C log₂ N − S) / N with C the
    /// counted (non-sentinel) positions and N the divisor of the boundary
    /// rule. When N = C the term C log₂ C comes from the same table as S,
    /// so a window with one occupied cell gives exactly 0.
    ///
    /// Rounding: each table entry is within 2⁻⁴⁷ of the fixed-point value
    /// and within about 2⁻⁵³ relative of the exact one, so after the
    /// division by N the result is within about 1e-14 bits of the
    /// textbook −Σ p log₂ p.
    fn entropy_bits(&self, window_positions: usize, boundary: Boundary) -> f64 {
        let uncounted = self.counts[self.sentinel] as usize;
        let counted = window_positions - uncounted;
        let sum_n_log_n = self.sum_all_cells - self.n_log_n[uncounted];
        let divisor = match boundary {
            Boundary::Masked => counted,
            Boundary::BoxSymmetric | Boundary::BoxZero => window_positions,
        };
        let total = if divisor == counted {
            self.n_log_n[counted]
        } else {
            counted as i64 * self.log2[divisor]
        };
        let numerator = (total - sum_n_log_n) as f64 * 2f64.powi(-FIXED_POINT_BITS);
        numerator / divisor as f64
    }
}

/// Computes E in bits for every ROI voxel by sliding the window histogram
/// along the last axis with a window extent above 1.
fn sliding_entropy(grid: &LevelGrid, roi: &RoiVoxels) -> Vec<f64> {
    let half = grid.half;
    let slide = if half[2] > 0 { 2 } else { 1 };
    let (first_other, second_other) = match slide {
        2 => (0, 1),
        _ => (0, 2),
    };

    // Offsets of the window plane normal to the slide axis, relative to the
    // plane's lowest corner.
    let mut plane_offsets = Vec::new();
    for a in 0..=2 * half[first_other] {
        for b in 0..=2 * half[second_other] {
            let mut position = [0usize; 3];
            position[first_other] = a;
            position[second_other] = b;
            plane_offsets.push(grid.index(position));
        }
    }
    let plane_stride = grid.strides[slide];

    let mut entropy = vec![0.0; roi.voxels.len()];
    let mut histogram = Histogram::new(grid.bins, grid.window_positions);
    for a in 0..roi.extent[first_other] {
        for b in 0..roi.extent[second_other] {
            let line_position = |t: usize| {
                let mut position = [0usize; 3];
                position[first_other] = a;
                position[second_other] = b;
                position[slide] = t;
                position
            };
            let in_roi = |t: &usize| roi.ordinal(line_position(*t)).is_some();
            let Some(first) = (0..roi.extent[slide]).find(in_roi) else {
                continue;
            };
            let last = (first..roi.extent[slide])
                .rev()
                .find(in_roi)
                .unwrap_or(first);

            // Box offset t along the slide axis is grid offset t + h there,
            // so the window of t spans grid planes t..=t + 2h, and the
            // window's lowest corner in the other axes is the box offset.
            let corner = grid.index(line_position(0));
            histogram.clear();
            for plane in first..=first + 2 * half[slide] {
                histogram.add_plane(&grid.levels, corner + plane * plane_stride, &plane_offsets);
            }
            for t in first..=last {
                if t > first {
                    histogram.slide(
                        &grid.levels,
                        corner + (t - 1) * plane_stride,
                        corner + (t + 2 * half[slide]) * plane_stride,
                        &plane_offsets,
                    );
                }
                if let Some(ordinal) = roi.ordinal(line_position(t)) {
                    entropy[ordinal] = histogram.entropy_bits(grid.window_positions, grid.boundary);
                }
            }
        }
    }
    entropy
}

/// Rescales values to [0, 1] by their min and max; all zeros when they are
/// equal.
fn rescale(values: &[f64]) -> Vec<f64> {
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &v| {
            (low.min(v), high.max(v))
        });
    if high > low {
        values.iter().map(|&v| (v - low) / (high - low)).collect()
    } else {
        vec![0.0; values.len()]
    }
}

#[cfg(test)]
mod tests;
