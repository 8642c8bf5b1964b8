//! Grey-level discretisation for the texture feature classes (GLCM, GLRLM, GLSZM, GLDM,
//! NGTDM), and the padded grey-level grid and neighbour offsets their kernels share.
//!
//! The rules follow PyRadiomics 3.1.4 (`imageoperations.getBinEdges` and `binImage`, PyPI
//! package `pyradiomics-bhklab`, numpy 2.4.6): the bin edges are computed from the ROI
//! intensities only, and each voxel gets the grey level `numpy.digitize(x, edges)`, the
//! number of edges ≤ x. Grey levels start at 1, and 0 marks voxels outside the ROI.
//!
//! Let:
//!
//! - **X** be the intensities of the ROI voxels, with minimum m and maximum M;
//! - **w** be the bin width (fixed bin width) and **N_b** the number of bins (fixed bin
//!   count);
//! - **e₀ < e₁ < …** be the bin edges; bins are right-open, [e_(g−1), e_g) is grey level g;
//! - **N_g** be the highest grey level of any ROI voxel. Levels between 1 and N_g may be
//!   empty, and N_g counts them, as PyRadiomics' `Ng` does.
//!
//! Fixed bin width (PyRadiomics `binWidth`): the lowest edge is L = m − (m mod w), with the
//! floor-style modulo of Python, so that L ≤ m and L is a multiple of w also for negative
//! intensities. The edges are the values of `numpy.arange(L, M + 2w, w)`: e₀ = L,
//! e₁ = L + w and e_g = L + g·((L + w) − L) for g ≥ 2, evaluated in f64 exactly as numpy
//! fills them. For whole-number intensities and a whole-number width, all below 2⁵³, these
//! are the exact multiples of w, and the grey level is ⌊x/w⌋ − ⌊m/w⌋ + 1. A flat ROI (m = M) gets one grey
//! level, 1.
//!
//! Fixed bin count (PyRadiomics `binCount`): the edges are those of
//! `numpy.histogram(X, N_b)`, e_g = m + g·((M − m)/N_b) for g < N_b and e_(N_b) = M, after
//! which PyRadiomics adds 1 to the last edge so that M falls into bin N_b. A flat ROI widens
//! the range to [m − 0.5, M + 0.5] first, as numpy does, so its voxels all get the middle
//! level ⌊N_b/2⌋ + 1 (17 for N_b = 32), not 1.
//!
//! Deviations from PyRadiomics 3.1.4:
//!
//! - PyRadiomics bins the image in its stored type (float32 for most NIfTI MR), this module
//!   in f64. Whole-number intensities below 2²⁴ bin identically. Other float32 values can
//!   land in a neighbouring bin when they sit within float32 rounding of an edge.
//! - With a fixed bin count, numpy fails ("too many bins for data range") when the range is
//!   so small next to the intensities that two edges round to the same f64, and it produces
//!   NaN edges when M − m overflows. This module still assigns monotone grey levels in both
//!   cases: it keeps the rounded edges in the first, and interpolates the edges as
//!   m·(1 − g/N_b) + M·(g/N_b) in the second. When M + 1 rounds to M (|M| ≥ 2⁵³), numpy puts
//!   M into bin N_b + 1, and this module keeps it in bin N_b.

use ndarray::{Array3, ShapeBuilder, s};

use super::pairwise_sum::pairwise_sum;
use crate::image::Volume;
use crate::mask::Roi;

/// Rule that maps intensities to grey levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Discretization {
    /// Bins of this width w in intensity units, starting at a multiple of w (PyRadiomics
    /// `binWidth`, default 25). Must be finite and > 0.
    FixedBinWidth(f64),
    /// This many equal bins N_b between the ROI's minimum and maximum (PyRadiomics
    /// `binCount`). Must be ≥ 1.
    FixedBinCount(u32),
}

/// Grey levels of one ROI, cropped to its bounding box.
#[derive(Debug, Clone, PartialEq)]
pub struct TextureInput {
    /// Grey level per voxel, 1-based; 0 outside the ROI. Indexed [i, j, k] like the image;
    /// cropped to the ROI bounding box.
    pub levels: Array3<u32>,
    /// Highest grey level present (N_g as PyRadiomics counts it: bins up to the max level,
    /// including empty ones in between).
    pub n_levels: u32,
    /// Voxel spacing along i, j, k in mm.
    pub spacing: [f64; 3],
}

/// Error from [`discretize`]: an invalid parameter, or an ROI that cannot be discretised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiscretizeError {
    /// The bin width is zero, negative, infinite or NaN.
    #[error("bin width {0} is invalid; it must be a finite number > 0")]
    InvalidBinWidth(f64),
    /// The bin count is zero.
    #[error("bin count 0 is invalid; it must be at least 1")]
    InvalidBinCount,
    /// Discretisation would give more grey levels than the configured cap, or the fixed bin
    /// count itself exceeds it.
    #[error(
        "intensities from {minimum} to {maximum} give {levels} grey levels, more than the cap of \
         {max_levels}; raise the bin width, lower the bin count or raise the cap"
    )]
    TooManyLevels {
        /// Grey levels the ROI would get (N_g), or the fixed bin count; saturated at
        /// `u64::MAX`.
        levels: u64,
        /// The configured cap.
        max_levels: u32,
        /// Lowest ROI intensity.
        minimum: f64,
        /// Highest ROI intensity.
        maximum: f64,
    },
    /// The mask has no voxel inside the ROI.
    #[error("ROI is empty; the mask selects no voxel")]
    EmptyRoi,
    /// An ROI voxel is NaN or infinite.
    #[error("intensity {value} at voxel {voxel:?} inside the ROI is not finite")]
    NonFiniteIntensity {
        /// The offending intensity.
        value: f64,
        /// Its voxel index (i, j, k).
        voxel: [usize; 3],
    },
    /// The mask and the image have different array shapes.
    #[error("mask shape {mask:?} differs from image shape {image:?}")]
    ShapeMismatch {
        /// Image array shape (i, j, k).
        image: [usize; 3],
        /// Mask array shape (i, j, k).
        mask: [usize; 3],
    },
}

/// Maps the ROI intensities to grey levels with PyRadiomics' rules (getBinEdges + binImage:
/// fixed bin width: lower edge = min − (min mod w) with floor-mod for negatives, edges every
/// w up to max + 2w, right-open bins, index from 1, flat ROI → one bin; fixed bin count: N
/// equal bins from min to max, max in the last bin). Fails before allocating anything large
/// if the number of levels exceeds `max_levels`.
///
/// The module documentation gives the edges and the deviations from PyRadiomics. The
/// returned array covers the bounding box of the ROI only; its voxels outside the ROI are 0.
pub fn discretize(
    image: &Volume,
    roi: &Roi,
    method: Discretization,
    max_levels: u32,
) -> Result<TextureInput, DiscretizeError> {
    validate(method)?;
    let image_shape: [usize; 3] = image.data.dim().into();
    let mask_shape: [usize; 3] = roi.mask.dim().into();
    if image_shape != mask_shape {
        return Err(DiscretizeError::ShapeMismatch {
            image: image_shape,
            mask: mask_shape,
        });
    }

    let Some((low, high)) = bounding_box(roi) else {
        return Err(DiscretizeError::EmptyRoi);
    };
    let box_slice = s![low[0]..=high[0], low[1]..=high[1], low[2]..=high[2]];
    let intensities = image.data.slice(box_slice);
    let mask = roi.mask.slice(box_slice);

    // One pass for the range, which fixes the edges and N_g before anything is allocated.
    let (minimum, maximum, all_finite, all_whole) =
        ndarray::Zip::from(&intensities).and(&mask).fold(
            (f64::INFINITY, f64::NEG_INFINITY, true, true),
            |(minimum, maximum, all_finite, all_whole), &value, &inside| {
                if inside {
                    (
                        minimum.min(value),
                        maximum.max(value),
                        all_finite && value.is_finite(),
                        // A round trip through i64 is exact for whole numbers below 2⁶³
                        // and avoids a libm call for trunc().
                        all_whole && (value as i64) as f64 == value,
                    )
                } else {
                    (minimum, maximum, all_finite, all_whole)
                }
            },
        );
    if !all_finite && let Some(error) = first_non_finite(&intensities, &mask, low) {
        return Err(error);
    }

    // The edges of a fixed bin count take 8 bytes per bin, so a count above the cap is
    // rejected before they exist, even when fewer levels would be occupied (a flat ROI
    // occupies only level ⌊N_b/2⌋ + 1).
    if let Discretization::FixedBinCount(count) = method
        && count > max_levels
    {
        return Err(DiscretizeError::TooManyLevels {
            levels: u64::from(count),
            max_levels,
            minimum,
            maximum,
        });
    }

    let binning = Binning::new(method, minimum, maximum);
    let top_level = binning.level_of(maximum);
    if top_level > f64::from(max_levels) {
        return Err(DiscretizeError::TooManyLevels {
            // `as` saturates, which the field documents.
            levels: top_level as u64,
            max_levels,
            minimum,
            maximum,
        });
    }

    // Same memory order as the image (Fortran order for NIfTI), so that the passes below and
    // in the texture kernels read memory sequentially.
    let fortran_order = !image.data.is_standard_layout() && image.data.t().is_standard_layout();
    let mut levels = if fortran_order {
        Array3::<u32>::zeros(intensities.raw_dim().f())
    } else {
        Array3::<u32>::zeros(intensities.raw_dim())
    };

    // Levels of ROI voxels lie in 1..=top_level ≤ max_levels because `level_of` is monotone
    // in the intensity, so the conversions to u32 are exact.
    let table_size = maximum - minimum + 1.0;
    if all_whole && table_size <= levels.len() as f64 {
        // Whole-number intensities (CT in HU, many MR series): the level of every whole
        // number from m to M, computed once by `level_of`, replaces the division and edge
        // tests per voxel with a lookup. The table is no larger than the output array. The
        // index value − m is exact, as the difference of two whole numbers at most the table
        // size apart, and so is m + offset for every offset that is some voxel's value − m.
        let table: Vec<u32> = (0..table_size as usize)
            .map(|offset| binning.level_of(minimum + offset as f64) as u32)
            .collect();
        ndarray::Zip::from(&mut levels)
            .and(&intensities)
            .and(&mask)
            .for_each(|level, &value, &inside| {
                if inside {
                    *level = table[(value - minimum) as usize];
                }
            });
    } else {
        ndarray::Zip::from(&mut levels)
            .and(&intensities)
            .and(&mask)
            .for_each(|level, &value, &inside| {
                if inside {
                    *level = binning.level_of(value) as u32;
                }
            });
    }

    Ok(TextureInput {
        levels,
        n_levels: top_level as u32,
        spacing: image.geometry.spacing,
    })
}

fn validate(method: Discretization) -> Result<(), DiscretizeError> {
    match method {
        Discretization::FixedBinWidth(width) if !(width.is_finite() && width > 0.0) => {
            Err(DiscretizeError::InvalidBinWidth(width))
        }
        Discretization::FixedBinCount(0) => Err(DiscretizeError::InvalidBinCount),
        _ => Ok(()),
    }
}

/// Returns the inclusive lower and upper corners of the ROI's bounding box, or `None` for
/// an empty mask.
pub(crate) fn bounding_box(roi: &Roi) -> Option<([usize; 3], [usize; 3])> {
    crate::mask::bounding_box(roi.mask.view())
}

/// Returns the error for the first non-finite ROI voxel in [i, j, k] order, if any. `low`
/// is the corner of the bounding box in the image.
fn first_non_finite(
    intensities: &ndarray::ArrayView3<f64>,
    mask: &ndarray::ArrayView3<bool>,
    low: [usize; 3],
) -> Option<DiscretizeError> {
    let (((i, j, k), &value), _) = intensities
        .indexed_iter()
        .zip(mask.iter())
        .find(|((_, value), inside)| **inside && !value.is_finite())?;
    Some(DiscretizeError::NonFiniteIntensity {
        value,
        voxel: [low[0] + i, low[1] + j, low[2] + k],
    })
}

/// Validated binning rule with its edges, for intensities within [minimum, maximum].
enum Binning {
    Width(FixedWidthEdges),
    /// Edges of the fixed-bin-count rule, N_b + 1 of them, ascending.
    Count(Vec<f64>),
}

impl Binning {
    /// Builds the edges; the method must have passed `validate`.
    fn new(method: Discretization, minimum: f64, maximum: f64) -> Self {
        match method {
            Discretization::FixedBinWidth(width) => {
                Binning::Width(FixedWidthEdges::new(minimum, maximum, width))
            }
            Discretization::FixedBinCount(count) => {
                Binning::Count(fixed_count_edges(minimum, maximum, count))
            }
        }
    }

    /// Returns the 1-based grey level of `value`, as an f64 so that it cannot overflow.
    fn level_of(&self, value: f64) -> f64 {
        match self {
            Binning::Width(edges) => edges.bin_of(value),
            Binning::Count(edges) => {
                // numpy.digitize: the number of edges ≤ value, at least 1 for ROI values
                // because e₀ ≤ m.
                let level = edges.partition_point(|&edge| edge <= value);
                level.clamp(1, edges.len() - 1) as f64
            }
        }
    }
}

/// Returns the N_b + 1 edges of `numpy.histogram(X, N_b)` with the last one raised by 1, as
/// PyRadiomics' `getBinEdges` computes them for a fixed bin count.
fn fixed_count_edges(minimum: f64, maximum: f64, count: u32) -> Vec<f64> {
    // numpy's _get_outer_edges: a flat range is widened by 0.5 on each side.
    let (first, last) = if minimum == maximum {
        (minimum - 0.5, maximum + 0.5)
    } else {
        (minimum, maximum)
    };
    let bins = f64::from(count);
    let delta = last - first;

    let mut edges: Vec<f64> = (0..=count)
        .map(|g| {
            let g = f64::from(g);
            if delta.is_finite() {
                // numpy.linspace: y = g·step + start with step = delta / N_b.
                g * (delta / bins) + first
            } else {
                // M − m overflowed, so interpolate without forming it.
                first * (1.0 - g / bins) + last * (g / bins)
            }
        })
        .collect();
    // numpy.linspace sets the endpoint exactly, and PyRadiomics then adds 1 so that
    // numpy.digitize puts M into the last bin. NOTE: if M + 1 rounds to M, numpy puts M into
    // bin N_b + 1; the clamp in `Binning::level_of` keeps it in bin N_b.
    edges[count as usize] = last + 1.0;
    edges
}

/// Bin edges of PyRadiomics' fixed-bin-width discretisation, evaluated like the
/// `numpy.arange(lower, maximum + 2·width, width)` call that PyRadiomics makes.
pub(crate) struct FixedWidthEdges {
    lower: f64,
    width: f64,
    /// Spacing of the third and later edges: (lower + width) − lower, as numpy's `fill`.
    step: f64,
    /// Index of the last edge; values at or above it get bin `last + 1`.
    last: f64,
}

impl FixedWidthEdges {
    /// Builds the edges for intensities in [minimum, maximum]; `width` is finite and > 0.
    pub(crate) fn new(minimum: f64, maximum: f64, width: f64) -> Self {
        let lower = minimum - minimum.rem_euclid(width);
        let step = (lower + width) - lower;
        let edge_count = ((maximum + 2.0 * width) - lower) / width;
        FixedWidthEdges {
            lower,
            width,
            step,
            last: (edge_count.ceil() - 1.0).max(0.0),
        }
    }

    /// Returns the index of the last edge: bins run from 1 to `last() + 1`.
    pub(crate) fn last(&self) -> f64 {
        self.last
    }

    fn edge(&self, index: f64) -> f64 {
        if index == 0.0 {
            self.lower
        } else if index == 1.0 {
            self.lower + self.width
        } else {
            self.lower + index * self.step
        }
    }

    /// Returns the 1-based bin of `value`, as `numpy.digitize(value, edges)`: the number of
    /// edges ≤ value. The index is an f64 so that no range of intensities can overflow it.
    pub(crate) fn bin_of(&self, value: f64) -> f64 {
        // The quotient is within one of the bin index, and the loops fix rounding at the
        // edges. Their bound stops them once ±1 no longer changes an index held in an f64.
        const MAX_CORRECTION_STEPS: usize = 4;
        // f64::max and f64::min, unlike clamp, never panic, and they turn a NaN quotient
        // into 0.
        let mut index = ((value - self.lower) / self.width)
            .floor()
            .max(0.0)
            .min(self.last);
        for _ in 0..MAX_CORRECTION_STEPS {
            if index > 0.0 && self.edge(index) > value {
                index -= 1.0;
            } else {
                break;
            }
        }
        for _ in 0..MAX_CORRECTION_STEPS {
            if index < self.last && self.edge(index + 1.0) <= value {
                index += 1.0;
            } else {
                break;
            }
        }
        index + 1.0
    }
}

/// Grey levels of a [`TextureInput`] renumbered to the levels present and surrounded by
/// empty voxels, as one flat buffer.
///
/// Texture kernels look up the neighbour of voxel `index` at `index + offset` with a
/// precomputed linear offset. The padding is at least as wide as the largest offset
/// component, so every neighbour of an ROI voxel lies inside the buffer and no per-neighbour
/// bounds test is needed. Padding voxels hold 0, like voxels outside the ROI. The buffer
/// keeps the memory order of the input, C or Fortran, which `strides` records.
#[derive(Clone)]
pub(crate) struct PaddedLevels {
    /// Renumbered level per voxel: 0 outside the ROI, r + 1 for the r-th grey level present
    /// (ascending).
    pub(crate) data: Vec<u32>,
    /// Padded shape along i, j, k.
    pub(crate) shape: [usize; 3],
    /// Change of the flat index for one voxel along i, j and k.
    pub(crate) strides: [usize; 3],
    /// Empty voxels added on each side of each axis.
    pub(crate) padding: usize,
    /// Grey level of each renumbered level: `present_levels[r]` for renumbered level r + 1.
    pub(crate) present_levels: Vec<u32>,
}

impl PaddedLevels {
    /// Copies `input.levels` into a grid with `padding` empty voxels on every side.
    pub(crate) fn new(input: &TextureInput, padding: usize) -> Self {
        // Flags of the levels present, in one pass in memory order (`iter` follows the logical
        // order, which strides through a Fortran-order array).
        let mut present = vec![false; input.n_levels as usize + 1];
        let mut flag = |level: u32| {
            let level = level as usize;
            if level >= present.len() {
                // Only if `n_levels` understates the highest level.
                present.resize(level + 1, false);
            }
            present[level] = true;
        };
        match input.levels.as_slice_memory_order() {
            Some(levels) => levels.iter().for_each(|&level| flag(level)),
            None => input.levels.iter().for_each(|&level| flag(level)),
        }
        let max_level = present.len() - 1;
        let present_levels: Vec<u32> = (1..=max_level)
            .filter(|&level| present[level])
            .map(|level| level as u32)
            .collect();

        // Renumbering table: grey level → r + 1, 0 stays 0.
        let mut renumbered = vec![0_u32; max_level + 1];
        for (rank, &level) in present_levels.iter().enumerate() {
            renumbered[level as usize] = rank as u32 + 1;
        }

        let (n_i, n_j, n_k) = input.levels.dim();
        let shape = [n_i + 2 * padding, n_j + 2 * padding, n_k + 2 * padding];
        // Same memory order as the input (Fortran order for NIfTI volumes, else C order), so
        // that the copy below reads and writes sequentially.
        let fortran_order =
            !input.levels.is_standard_layout() && input.levels.t().is_standard_layout();
        let strides = if fortran_order {
            [1, shape[0], shape[0] * shape[1]]
        } else {
            [shape[1] * shape[2], shape[2], 1]
        };
        let mut padded = PaddedLevels {
            data: vec![0_u32; shape[0] * shape[1] * shape[2]],
            shape,
            strides,
            padding,
            present_levels,
        };

        // Lane by lane along the contiguous axis: i in Fortran order, k in C order.
        let (axis, first_other, second_other) = if fortran_order { (0, 1, 2) } else { (2, 0, 1) };
        let second_extent = input.levels.len_of(ndarray::Axis(second_other));
        for (lane_index, lane) in input
            .levels
            .lanes(ndarray::Axis(axis))
            .into_iter()
            .enumerate()
        {
            let mut position = [padding; 3];
            position[first_other] += lane_index / second_extent;
            position[second_other] += lane_index % second_extent;
            let start = padded.flat_index(position);
            let target = &mut padded.data[start..start + lane.len()];
            for (voxel, &level) in target.iter_mut().zip(lane.iter()) {
                *voxel = renumbered[level as usize];
            }
        }
        padded
    }

    /// Returns the flat index of padded voxel (i, j, k).
    pub(crate) fn flat_index(&self, position: [usize; 3]) -> usize {
        position[0] * self.strides[0]
            + position[1] * self.strides[1]
            + position[2] * self.strides[2]
    }

    /// Returns the padded (i, j, k) of flat index `index`.
    pub(crate) fn position(&self, index: usize) -> [usize; 3] {
        std::array::from_fn(|axis| index / self.strides[axis] % self.shape[axis])
    }

    /// Returns the change of the flat index for a step of `offset` = (di, dj, dk) voxels.
    pub(crate) fn linear_offset(&self, offset: [i32; 3]) -> isize {
        (0..3)
            .map(|axis| offset[axis] as isize * self.strides[axis] as isize)
            .sum()
    }
}

/// Returns PyRadiomics' angles for the given Chebyshev (infinity-norm) distances on a box of
/// `box_shape` voxels, as offsets (di, dj, dk).
///
/// Each angle appears once, not as a ± pair: PyRadiomics 3.1.4 (`build_angles` in its C
/// extension) keeps the offsets whose (dk, dj, di) is lexicographically positive, in
/// descending lexicographic order of (dk, dj, di), and so does this function. Offsets with a
/// component of at least the box size along that axis are left out, as PyRadiomics leaves
/// them out: no voxel pair in the box is that far apart. Distance 1 gives 13 angles on a box
/// of at least 2 voxels along every axis; zero distances are ignored.
pub(crate) fn angle_offsets(distances: &[u32], box_shape: [usize; 3]) -> Vec<[i32; 3]> {
    // No component can usefully exceed the box size − 1, which also bounds the loops below.
    let largest_extent = box_shape
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .saturating_sub(1);
    let reach = distances
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .min(u32::try_from(largest_extent).unwrap_or(u32::MAX))
        .min(i32::MAX as u32) as i32;
    let within_box =
        |component: i32, axis: usize| (component.unsigned_abs() as usize) < box_shape[axis];

    let mut angles = Vec::new();
    for dk in (-reach..=reach).rev() {
        for dj in (-reach..=reach).rev() {
            for di in (-reach..=reach).rev() {
                let lexicographically_positive =
                    dk > 0 || (dk == 0 && dj > 0) || (dk == 0 && dj == 0 && di > 0);
                let norm = di.abs().max(dj.abs()).max(dk.abs()) as u32;
                if lexicographically_positive
                    && distances.contains(&norm)
                    && within_box(di, 0)
                    && within_box(dj, 1)
                    && within_box(dk, 2)
                {
                    angles.push([di, dj, dk]);
                }
            }
        }
    }
    angles
}

/// Returns the mean of the non-NaN `values`, or NaN if there are none, with the rounding of
/// numpy's `nanmean` along a contiguous axis: NaN replaced by 0, numpy's pairwise sum, then
/// one division by the count. PyRadiomics averages each texture feature over the angles this
/// way; a plain running sum differs from it in the last bits.
pub(crate) fn nan_mean(values: &[f64]) -> f64 {
    let count = values.iter().filter(|value| !value.is_nan()).count();
    if count == 0 {
        return f64::NAN;
    }
    let zeroed: Vec<f64> = values
        .iter()
        .map(|&value| if value.is_nan() { 0.0 } else { value })
        .collect();
    pairwise_sum(&zeroed) / count as f64
}

#[cfg(test)]
pub(crate) mod test_volumes;

#[cfg(test)]
mod tests;
