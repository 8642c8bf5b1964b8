//! Regions of interest from integer label maps.
//!
//! A mask file is a label map: every voxel contains an integer label, 0 for
//! background. The region of interest is the set of voxels equal to the
//! requested label. A mask with a non-integer value is an error, never
//! truncated, because a float mask usually means an interpolated or
//! probabilistic map that needs a decision the worker cannot make.
//!
//! DICOM RTSTRUCT and SEG masks are turned into such label maps on the
//! image grid by [`file::read_mask`].

pub mod file;
pub mod polygon;
pub mod rtstruct;
pub mod seg;

use std::collections::BTreeSet;

use ndarray::{Array3, ArrayView3, Zip};

use crate::image::Volume;

/// Smallest number of axes along which the ROI must span more than one
/// voxel (PyRadiomics' `minimumROIDimensions` default, 2).
pub const MIN_ROI_DIMENSIONS: usize = 2;

/// Reason a mask yields no usable region.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaskError {
    /// A voxel value is not an integer.
    #[error(
        "mask value {value} at voxel {voxel:?} is not an integer; masks must be integer label maps{}",
        swapped_paths_hint(*.looks_like_intensity_image)
    )]
    NonInteger {
        /// The offending value.
        value: f64,
        /// Its voxel index (i, j, k).
        voxel: [usize; 3],
        /// Whether the mask has at least [`INTENSITY_IMAGE_MIN_VALUES`] distinct non-zero
        /// values.
        looks_like_intensity_image: bool,
    },
    /// The requested label does not occur.
    #[error("label {label} not found in mask; {}", describe_present_labels(.present))]
    LabelAbsent {
        /// The requested label.
        label: u32,
        /// Labels present, background excluded.
        present: Vec<i64>,
    },
    /// Every voxel is background.
    #[error(
        "mask is empty: every voxel is 0 (background); check that the file is this lesion's mask"
    )]
    Empty,
    /// The ROI is too thin for the features.
    #[error(
        "ROI has {voxels} voxels and spans more than one voxel along only {dimensions} of 3 axes (extent {extent:?}); 3-D features need {MIN_ROI_DIMENSIONS} such axes (fewer only where minimumROIDimensions allows, and never a single voxel)"
    )]
    TooSmall {
        /// Voxels in the ROI.
        voxels: usize,
        /// Axes with extent > 1.
        dimensions: usize,
        /// Bounding-box extent along i, j, k.
        extent: [usize; 3],
    },
}

/// Number of distinct non-zero values from which a mask is reported as looking like an
/// intensity image. A lesion's label map has a few labels, and a `u8` label map at most 255.
pub const INTENSITY_IMAGE_MIN_VALUES: usize = 256;

/// Number of labels that a [`MaskError::LabelAbsent`] message lists before "and N more".
const LISTED_LABELS: usize = 10;

/// Returns the end of a [`MaskError::NonInteger`] message: empty, or for a mask that looks
/// like an intensity image, the advice to check for swapped paths.
fn swapped_paths_hint(looks_like_intensity_image: bool) -> String {
    if !looks_like_intensity_image {
        return String::new();
    }
    format!(
        "; the mask has {INTENSITY_IMAGE_MIN_VALUES} or more distinct values, so it looks like an intensity image: check that the image and mask paths are not swapped"
    )
}

/// Describes the labels of a mask that lacks the requested one. The text lists the first
/// [`LISTED_LABELS`] in ascending order and explains how to choose one. For a mask with
/// [`INTENSITY_IMAGE_MIN_VALUES`] or more labels it reports instead that the mask looks like
/// an intensity image.
fn describe_present_labels(present: &[i64]) -> String {
    let mut listed = present
        .iter()
        .take(LISTED_LABELS)
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if present.len() > LISTED_LABELS {
        listed.push_str(&format!(" and {} more", present.len() - LISTED_LABELS));
    }
    if present.len() >= INTENSITY_IMAGE_MIN_VALUES {
        return format!(
            "the mask has {} distinct values ({listed}), so it looks like an intensity image, not a label map; check that the image and mask paths are not swapped",
            present.len()
        );
    }
    format!(
        "labels present: {listed}; set the label to one of them (`features.label` in study.toml, --label of `check` and `extract`, or `label` in a parameter file)"
    )
}

/// Returns whether `labels` has at least [`INTENSITY_IMAGE_MIN_VALUES`] distinct non-zero
/// values. Only the error path calls it, so the extra pass costs nothing on valid masks.
fn has_intensity_image_values(labels: &Volume) -> bool {
    let mut distinct = std::collections::HashSet::new();
    for &value in labels.data.iter() {
        if value != 0.0
            && distinct.insert(value.to_bits())
            && distinct.len() >= INTENSITY_IMAGE_MIN_VALUES
        {
            return true;
        }
    }
    false
}

/// A region of interest: a boolean mask on the image grid.
#[derive(Debug, Clone)]
pub struct Roi {
    /// `true` inside the region, indexed `[i, j, k]`.
    pub mask: Array3<bool>,
    /// Number of `true` voxels.
    pub voxel_count: usize,
}

/// Selects the voxels equal to `label` in a label map and checks that the
/// region is large enough for 3-D features.
pub fn select_label(labels: &Volume, label: u32) -> Result<Roi, MaskError> {
    select_label_spanning(labels, label, MIN_ROI_DIMENSIONS)
}

/// Selects the voxels equal to `label` and checks that the region spans more
/// than one voxel along at least `minimum_dimensions` axes (PyRadiomics'
/// `minimumROIDimensions`, 1 to 3). A one-voxel ROI spans no axis, so it is
/// always rejected.
pub fn select_label_spanning(
    labels: &Volume,
    label: u32,
    minimum_dimensions: usize,
) -> Result<Roi, MaskError> {
    // One pass over the label map checks the values, collects the labels present and
    // builds the mask. `mapv` walks a contiguous array in memory order (Fortran order for
    // NIfTI), so the map is read from memory once. A walk in [i, j, k] order would stride
    // through memory with a cache miss per voxel.
    let target = label as f64;
    let mut scan = LabelScan::default();
    let mask = labels.data.mapv(|value| scan.visit(value, target));
    let LabelScan {
        all_whole,
        present,
        voxel_count,
        ..
    } = scan;
    if !all_whole {
        // Report the first non-integer voxel in [i, j, k] order, as the error has always
        // named it.
        if let Some(((i, j, k), &value)) = labels
            .data
            .indexed_iter()
            .find(|(_, value)| value.fract() != 0.0 || !value.is_finite())
        {
            return Err(MaskError::NonInteger {
                value,
                voxel: [i, j, k],
                looks_like_intensity_image: has_intensity_image_values(labels),
            });
        }
    }
    if present.is_empty() {
        return Err(MaskError::Empty);
    }
    if !present.contains(&(label as i64)) {
        return Err(MaskError::LabelAbsent {
            label,
            present: present.into_iter().collect(),
        });
    }
    if present.len() >= INTENSITY_IMAGE_MIN_VALUES {
        // NOTE: only a warning, because a label map may have this many labels. Swapped image
        // and mask paths therefore still give features when an image voxel equals the label.
        tracing::warn!(
            distinct_values = present.len(),
            label,
            "the mask has {INTENSITY_IMAGE_MIN_VALUES} or more distinct values and looks like an intensity image; check that the image and mask paths are not swapped"
        );
    }

    let extent = bounding_box_extent(&mask);
    let dimensions = extent.iter().filter(|&&e| e > 1).count();
    if dimensions < minimum_dimensions.max(1) {
        return Err(MaskError::TooSmall {
            voxels: voxel_count,
            dimensions,
            extent,
        });
    }
    Ok(Roi { mask, voxel_count })
}

/// Findings of one pass over a label map.
struct LabelScan {
    /// Whether every value so far is a whole number.
    all_whole: bool,
    /// Non-zero labels present.
    present: BTreeSet<i64>,
    /// The label inserted last, which most non-zero voxels repeat.
    last_inserted: f64,
    /// Number of voxels with the requested label.
    voxel_count: usize,
}

impl Default for LabelScan {
    fn default() -> Self {
        LabelScan {
            all_whole: true,
            present: BTreeSet::new(),
            last_inserted: 0.0,
            voxel_count: 0,
        }
    }
}

impl LabelScan {
    /// Records one label value; returns whether it is the label `target`.
    fn visit(&mut self, value: f64, target: f64) -> bool {
        let inside = value == target;
        self.voxel_count += usize::from(inside);
        // Background (0) is whole and not a label, and most voxels are background.
        if value != 0.0 {
            // The round trip through i64 is exact for whole numbers below 2⁶³ and needs no
            // libm call; fract() decides the rare values outside that range.
            let whole =
                (value as i64) as f64 == value || (value.is_finite() && value.fract() == 0.0);
            self.all_whole &= whole;
            if whole && value != self.last_inserted {
                self.present.insert(value as i64);
                self.last_inserted = value;
            }
        }
        inside
    }
}

/// Reason a mask cannot be placed on the image grid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    /// Spacing or direction differ, so the mask voxels are not image voxels.
    #[error(
        "mask grid is not a sub-grid of the image grid: {0}; resample the mask onto the image grid"
    )]
    NotSubGrid(String),
    /// The mask voxel centres lie between image voxel centres.
    #[error(
        "mask voxel centres are {distance_mm:.4} mm from the nearest image voxel centres (tolerance {tolerance_mm} mm); resample the mask onto the image grid"
    )]
    OffGrid {
        /// Distance between a mask voxel centre and the nearest image voxel centre.
        distance_mm: f64,
        /// The accepted distance.
        tolerance_mm: f64,
    },
    /// Voxels of the requested label fall outside the image.
    #[error(
        "{outside} voxels of label {label} lie outside the image (mask size {mask_dims:?} starts at image index {offset:?}, image size {image_dims:?}); check that the mask belongs to this image, and cut an ROI that extends beyond the image to the image's extent"
    )]
    OutsideImage {
        /// The requested label.
        label: u32,
        /// Voxels of the label outside the image.
        outside: usize,
        /// Image index of mask voxel (0, 0, 0).
        offset: [i64; 3],
        /// Mask size.
        mask_dims: [usize; 3],
        /// Image size.
        image_dims: [usize; 3],
    },
    /// A mask voxel outside the image is not a whole number, so the mask is not a label
    /// map even though the voxels inside the image may be.
    #[error(
        "mask value {value} at mask voxel {voxel:?}, outside the image, is not an integer; masks must be integer label maps"
    )]
    NonIntegerOutside {
        /// The offending value.
        value: f64,
        /// Its mask voxel index (i, j, k).
        voxel: [usize; 3],
    },
}

/// Places a label map on the image grid by physical position. The mask grid may be the
/// image grid, a box inside it or a larger grid around it, with the same spacing and
/// direction and voxel centres on image voxel centres within `tolerance.origin_mm`. A
/// mask is never overlaid by index. Mask voxels outside the image are dropped: a voxel
/// of `label` or a non-integer value among them is an error, a voxel of another label is
/// not.
pub fn place_on_image_grid(
    labels: &Volume,
    image: &crate::image::Geometry,
    tolerance: &crate::config::GeometryTolerance,
    label: u32,
) -> Result<Volume, PlacementError> {
    match placement_offset(&labels.geometry, image, tolerance)? {
        None => Ok(labels.clone()),
        Some(offset) => place_at_offset(labels, image, offset, label),
    }
}

/// Places a label map on the image grid as [`place_on_image_grid`] does, and returns
/// `labels` itself, without a copy, when it already covers the image grid.
pub fn into_image_grid(
    labels: Volume,
    image: &crate::image::Geometry,
    tolerance: &crate::config::GeometryTolerance,
    label: u32,
) -> Result<Volume, PlacementError> {
    match placement_offset(&labels.geometry, image, tolerance)? {
        None => Ok(labels),
        Some(offset) => place_at_offset(&labels, image, offset, label),
    }
}

/// Checks that the mask grid is a sub-grid of the image grid, and returns the image index
/// of mask voxel (0, 0, 0), or `None` when the mask grid is the image grid.
fn placement_offset(
    mask: &crate::image::Geometry,
    image: &crate::image::Geometry,
    tolerance: &crate::config::GeometryTolerance,
) -> Result<Option<[i64; 3]>, PlacementError> {
    for axis in 0..3 {
        let (a, b) = (image.spacing[axis], mask.spacing[axis]);
        if (a - b).abs() > tolerance.spacing_relative * a.abs().max(b.abs()) {
            return Err(PlacementError::NotSubGrid(format!(
                "mask spacing {:?} mm differs from image spacing {:?} mm",
                mask.spacing, image.spacing
            )));
        }
    }
    for row in 0..3 {
        for column in 0..3 {
            if (image.direction[row][column] - mask.direction[row][column]).abs()
                > tolerance.direction
            {
                return Err(PlacementError::NotSubGrid(format!(
                    "mask direction {:?} differs from image direction {:?}",
                    mask.direction, image.direction
                )));
            }
        }
    }

    // The direction columns are orthonormal, so the image index of a point p
    // is (Dᵀ (p − origin))_c / spacing_c.
    let world: [f64; 3] = std::array::from_fn(|r| mask.origin[r] - image.origin[r]);
    let continuous: [f64; 3] = std::array::from_fn(|c| {
        (0..3)
            .map(|r| image.direction[r][c] * world[r])
            .sum::<f64>()
            / image.spacing[c]
    });
    let offset: [i64; 3] = std::array::from_fn(|c| continuous[c].round() as i64);
    let distance_mm = (0..3)
        .map(|c| ((continuous[c] - offset[c] as f64) * image.spacing[c]).powi(2))
        .sum::<f64>()
        .sqrt();
    if distance_mm > tolerance.origin_mm {
        return Err(PlacementError::OffGrid {
            distance_mm,
            tolerance_mm: tolerance.origin_mm,
        });
    }
    Ok((offset != [0, 0, 0] || mask.dims != image.dims).then_some(offset))
}

/// Copies the label map into an image-sized array, mask voxel (0, 0, 0) at image index
/// `offset`. Voxels of `label` that fall outside the image are an error.
fn place_at_offset(
    labels: &Volume,
    image: &crate::image::Geometry,
    offset: [i64; 3],
    label: u32,
) -> Result<Volume, PlacementError> {
    let target_label = f64::from(label);
    let mut placed = Array3::<f64>::zeros(image.dims);
    let mut outside = 0;
    for ((i, j, k), &value) in labels.data.indexed_iter() {
        let target = [
            i as i64 + offset[0],
            j as i64 + offset[1],
            k as i64 + offset[2],
        ];
        let inside = (0..3).all(|c| target[c] >= 0 && (target[c] as usize) < image.dims[c]);
        if inside {
            placed[[target[0] as usize, target[1] as usize, target[2] as usize]] = value;
        } else if value == target_label {
            outside += 1;
        } else if value.fract() != 0.0 || !value.is_finite() {
            return Err(PlacementError::NonIntegerOutside {
                value,
                voxel: [i, j, k],
            });
        }
    }
    if outside > 0 {
        return Err(PlacementError::OutsideImage {
            label,
            outside,
            offset,
            mask_dims: labels.geometry.dims,
            image_dims: image.dims,
        });
    }
    Ok(Volume {
        data: placed,
        geometry: image.clone(),
        stored_as_integer: labels.stored_as_integer,
    })
}

/// Returns the ROI's intensities, in `[i, j, k]` iteration order, or the
/// number of non-finite values among them.
pub fn roi_values(image: &Volume, roi: &Roi) -> Result<Vec<f64>, usize> {
    let mut values = Vec::with_capacity(roi.voxel_count);
    let mut non_finite = 0;
    Zip::from(&image.data)
        .and(&roi.mask)
        .for_each(|&value, &inside| {
            if inside {
                if value.is_finite() {
                    values.push(value);
                } else {
                    non_finite += 1;
                }
            }
        });
    if non_finite > 0 {
        Err(non_finite)
    } else {
        Ok(values)
    }
}

/// Bounding-box extent of the `true` voxels along each axis (0 when empty).
fn bounding_box_extent(mask: &Array3<bool>) -> [usize; 3] {
    match bounding_box(mask.view()) {
        Some((low, high)) => std::array::from_fn(|axis| high[axis] - low[axis] + 1),
        None => [0; 3],
    }
}

/// Returns the inclusive lower and upper corners of the bounding box of the `true` voxels,
/// or `None` when there is none.
pub(crate) fn bounding_box(mask: ArrayView3<bool>) -> Option<([usize; 3], [usize; 3])> {
    let mut low = [usize::MAX; 3];
    let mut high = [0_usize; 3];
    // Lane by lane along the contiguous axis (i for NIfTI volumes, which are in Fortran
    // order): only the first and last ROI voxel of each lane matter, and a search in a slice
    // is faster than indexed iteration.
    let fortran_order = !mask.is_standard_layout() && mask.t().is_standard_layout();
    let (axis, first_other, second_other) = if fortran_order { (0, 1, 2) } else { (2, 0, 1) };
    let second_extent = mask.len_of(ndarray::Axis(second_other));
    for (lane_index, lane) in mask.lanes(ndarray::Axis(axis)).into_iter().enumerate() {
        let first_and_last = match lane.as_slice() {
            Some(slice) => first_and_last_true(slice.iter().copied()),
            None => first_and_last_true(lane.iter().copied()),
        };
        let Some((first, last)) = first_and_last else {
            continue;
        };
        let mut from = [0; 3];
        from[first_other] = lane_index / second_extent;
        from[second_other] = lane_index % second_extent;
        let mut to = from;
        from[axis] = first;
        to[axis] = last;
        for axis in 0..3 {
            low[axis] = low[axis].min(from[axis]);
            high[axis] = high[axis].max(to[axis]);
        }
    }
    (low[0] != usize::MAX).then_some((low, high))
}

/// Returns the positions of the first and last `true`, or `None` if there is none.
fn first_and_last_true(
    mut values: impl DoubleEndedIterator<Item = bool> + ExactSizeIterator + Clone,
) -> Option<(usize, usize)> {
    let first = values.clone().position(|inside| inside)?;
    let last = values.rposition(|inside| inside).unwrap_or(first);
    Some((first, last))
}

#[cfg(test)]
mod tests;
