//! IBSI discretisation and the cropped ROI grid the families share.
//!
//! IBSI fixed bin size (FBS): X_d = ⌊(X − X_min)/w⌋ + 1, where X_min is the lower bound of
//! the re-segmentation range when there is one and the ROI minimum otherwise. IBSI fixed
//! bin number (FBN): X_d = ⌊N_g (X − X_min)/(X_max − X_min)⌋ + 1, with X_max put into bin
//! N_g and X_min, X_max the ROI extremes. PyRadiomics instead starts fixed-width bins at a
//! multiple of w.

use ndarray::{Array3, s};

use super::IbsiError;
use crate::image::Volume;
use crate::mask::Roi;

/// Rule that maps ROI intensities to grey levels 1, 2, … N_g.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GreyLevelRule {
    /// Fixed bin size w from `lower_bound` (the re-segmentation lower bound) or, if none,
    /// from the ROI minimum. N_g is the highest level in the ROI; empty levels below it
    /// count. For whole-number intensities, w = 1 and a lower bound of 1 keep the
    /// intensities as grey levels ("no discretisation" of the IBSI digital phantom).
    FixedBinSize {
        /// Bin width w in intensity units; finite and > 0.
        width: f64,
        /// Intensity at which bin 1 starts; ROI voxels below it are rejected.
        lower_bound: Option<f64>,
    },
    /// Fixed bin number N_g between the ROI minimum and maximum; ≥ 1.
    FixedBinNumber(u32),
}

/// The ROI's bounding box with its intensities, mask and grey levels.
#[derive(Debug, Clone)]
pub(super) struct RoiGrid {
    /// Intensities in the bounding box, indexed [i, j, k].
    pub intensities: Array3<f64>,
    /// ROI membership in the bounding box.
    pub mask: Array3<bool>,
    /// Grey level per voxel, 1 … N_g inside the ROI and 0 outside.
    pub levels: Array3<u32>,
    /// Number of grey levels N_g.
    pub n_levels: u32,
    /// Index of the bounding box's first voxel in the image.
    pub offset: [usize; 3],
    /// Voxel size along i, j, k in mm.
    pub spacing: [f64; 3],
    /// Number of ROI voxels N_v.
    pub voxel_count: usize,
}

impl RoiGrid {
    /// Crops the image to the ROI's bounding box and discretises the ROI.
    pub fn new(
        image: &Volume,
        roi: &Roi,
        rule: &GreyLevelRule,
        max_levels: u32,
    ) -> Result<Self, IbsiError> {
        let image_shape: [usize; 3] = image.data.dim().into();
        let mask_shape: [usize; 3] = roi.mask.dim().into();
        if image_shape != mask_shape {
            return Err(IbsiError::ShapeMismatch {
                image: image_shape,
                mask: mask_shape,
            });
        }

        let mut lower = [usize::MAX; 3];
        let mut upper = [0; 3];
        let mut minimum = f64::INFINITY;
        let mut maximum = f64::NEG_INFINITY;
        let mut voxel_count = 0;
        for ((i, j, k), &inside) in roi.mask.indexed_iter() {
            if !inside {
                continue;
            }
            let value = image.data[[i, j, k]];
            if !value.is_finite() {
                return Err(IbsiError::NonFiniteIntensity {
                    value,
                    voxel: [i, j, k],
                });
            }
            voxel_count += 1;
            minimum = minimum.min(value);
            maximum = maximum.max(value);
            for (axis, index) in [i, j, k].into_iter().enumerate() {
                lower[axis] = lower[axis].min(index);
                upper[axis] = upper[axis].max(index);
            }
        }
        if voxel_count == 0 {
            return Err(IbsiError::EmptyRoi);
        }

        let level_of = level_function(rule, minimum, maximum)?;
        let top = level_of(maximum);
        if top > f64::from(max_levels) {
            return Err(IbsiError::TooManyLevels {
                levels: top as u64,
                cap: max_levels,
            });
        }

        let bounding_box = s![
            lower[0]..=upper[0],
            lower[1]..=upper[1],
            lower[2]..=upper[2]
        ];
        let intensities = image.data.slice(bounding_box).to_owned();
        let mask = roi.mask.slice(bounding_box).to_owned();
        let levels = ndarray::Zip::from(&intensities)
            .and(&mask)
            .map_collect(|&value, &inside| if inside { level_of(value) as u32 } else { 0 });
        let n_levels = match rule {
            GreyLevelRule::FixedBinNumber(count) => *count,
            GreyLevelRule::FixedBinSize { .. } => top as u32,
        };
        Ok(RoiGrid {
            intensities,
            mask,
            levels,
            n_levels,
            offset: lower,
            spacing: image.geometry.spacing,
            voxel_count,
        })
    }

    /// Returns the ROI intensities, i varying fastest.
    pub fn roi_intensities(&self) -> Vec<f64> {
        self.roi_values(&self.intensities)
    }

    /// Returns the ROI grey levels as numbers, i varying fastest.
    pub fn roi_levels(&self) -> Vec<f64> {
        self.roi_values(&self.levels.mapv(f64::from))
    }

    fn roi_values(&self, values: &Array3<f64>) -> Vec<f64> {
        let mut output = Vec::with_capacity(self.voxel_count);
        let (size_i, size_j, size_k) = self.mask.dim();
        for k in 0..size_k {
            for j in 0..size_j {
                for i in 0..size_i {
                    if self.mask[[i, j, k]] {
                        output.push(values[[i, j, k]]);
                    }
                }
            }
        }
        output
    }

    /// Returns one grid per slice of constant k that contains ROI voxels, for the 2-D and
    /// 2.5-D aggregations; IBSI stacks the slices of its phantoms along k.
    pub fn slices(&self) -> Vec<RoiGrid> {
        let size_k = self.levels.dim().2;
        (0..size_k)
            .filter_map(|k| {
                let plane = s![.., .., k..k + 1];
                let mask = self.mask.slice(plane).to_owned();
                let voxel_count = mask.iter().filter(|&&inside| inside).count();
                (voxel_count > 0).then(|| RoiGrid {
                    intensities: self.intensities.slice(plane).to_owned(),
                    mask,
                    levels: self.levels.slice(plane).to_owned(),
                    n_levels: self.n_levels,
                    offset: [self.offset[0], self.offset[1], self.offset[2] + k],
                    spacing: self.spacing,
                    voxel_count,
                })
            })
            .collect()
    }

    /// Returns the grey level at a signed index, or 0 outside the box or the ROI.
    pub fn level_at(&self, index: [isize; 3]) -> u32 {
        let dims = self.levels.dim();
        let dims = [dims.0, dims.1, dims.2];
        if (0..3).any(|axis| index[axis] < 0 || index[axis] as usize >= dims[axis]) {
            return 0;
        }
        self.levels[[index[0] as usize, index[1] as usize, index[2] as usize]]
    }
}

/// The 13 direction vectors of Chebyshev distance 1 that cover the 26 neighbours once up
/// to sign.
pub(super) const DIRECTIONS: [[isize; 3]; 13] = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
    [1, 1, 0],
    [1, -1, 0],
    [1, 0, 1],
    [1, 0, -1],
    [0, 1, 1],
    [0, 1, -1],
    [1, 1, 1],
    [1, 1, -1],
    [1, -1, 1],
    [1, -1, -1],
];

/// The 4 in-plane direction vectors (constant k) of Chebyshev distance 1.
pub(super) const PLANAR_DIRECTIONS: [[isize; 3]; 4] = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, -1, 0]];

/// Returns the 26 neighbour offsets of Chebyshev distance 1. On a one-slice grid from
/// [`RoiGrid::slices`] only the 8 in-plane ones can reach a voxel.
pub(super) fn neighbour_offsets() -> Vec<[isize; 3]> {
    DIRECTIONS
        .iter()
        .flat_map(|&d| [d, [-d[0], -d[1], -d[2]]])
        .collect()
}

/// Builds X ↦ grey level (as f64, ≥ 1) for the rule and the ROI range.
fn level_function(
    rule: &GreyLevelRule,
    minimum: f64,
    maximum: f64,
) -> Result<Box<dyn Fn(f64) -> f64>, IbsiError> {
    match *rule {
        GreyLevelRule::FixedBinSize { width, lower_bound } => {
            if !(width.is_finite() && width > 0.0) {
                return Err(IbsiError::InvalidSetting {
                    field: "bin_width",
                    value: width,
                    reason: "it must be a finite number > 0",
                });
            }
            let start = lower_bound.unwrap_or(minimum);
            if !start.is_finite() || minimum < start {
                return Err(IbsiError::InvalidSetting {
                    field: "lower_bound",
                    value: start,
                    reason: "it must be finite and at most the ROI minimum; re-segment the ROI to the range first",
                });
            }
            Ok(Box::new(move |value| {
                ((value - start) / width).floor() + 1.0
            }))
        }
        GreyLevelRule::FixedBinNumber(count) => {
            if count == 0 {
                return Err(IbsiError::InvalidSetting {
                    field: "bin_number",
                    value: 0.0,
                    reason: "it must be at least 1",
                });
            }
            let bins = f64::from(count);
            let range = maximum - minimum;
            Ok(Box::new(move |value| {
                if range <= 0.0 {
                    return 1.0;
                }
                (bins * (value - minimum) / range).floor().min(bins - 1.0) + 1.0
            }))
        }
    }
}
