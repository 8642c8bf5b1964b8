//! Resampling an image and its label map to a new voxel spacing, on the
//! grid that PyRadiomics builds (`imageoperations.resampleImage`, v3.1):
//!
//! - a target spacing of 0 keeps the original spacing on that axis, and so
//!   does every axis along which the ROI is one voxel thick;
//! - when the target spacing equals the image's (numpy `allclose`), nothing
//!   is interpolated;
//! - otherwise the new grid covers the ROI's bounding box plus
//!   `pad_distance` new voxels on each side, clipped to the original image
//!   extent: with r = old / new spacing, bounding box start b and size n
//!   (voxels), the new index range is ⌊(b − ½)·r − pad⌋ … ⌈(b + n − ½)·r + pad⌉,
//!   clipped to 0 … ⌈size·r⌉ − 1;
//! - new voxel 0 of the uncropped grid sits at old continuous index
//!   ½·(new − old)/old, so the old and new grids share the outer corner of
//!   voxel 0 (the same field of view).
//!
//! The image is interpolated with the chosen [`Interpolator`], the label map
//! always by nearest neighbour. A point outside the old image (continuous
//! index below −½ or at or above size − ½ on some axis) gets 0, as ITK's
//! `ResampleImageFilter` gives its default pixel value. An integer image stays
//! integer: interpolated values are truncated toward zero, as ITK casts to
//! the input pixel type.
//!
//! B-spline interpolation is cubic B-spline interpolation (Unser, "Splines:
//! a perfect fit for signal and image processing", IEEE Signal Processing
//! Magazine 1999): coefficients from a recursive prefilter along each axis
//! (pole z = √3 − 2, mirror boundaries, causal start summed to a 1e-10
//! horizon), then a weighted sum of 4 × 4 × 4 coefficients. This is the
//! method of ITK's `BSplineInterpolateImageFunction` of order 3, which
//! PyRadiomics uses through SimpleITK (`sitkBSpline`). Linear interpolation
//! clamps at the image border, as ITK's `LinearInterpolateImageFunction`
//! does; nearest neighbour rounds halves up.

use ndarray::{Array3, Axis};

use super::{Geometry, Volume};

/// Method for image intensities between voxel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolator {
    /// The nearest voxel's value (`sitkNearestNeighbor`).
    Nearest,
    /// Trilinear interpolation (`sitkLinear`).
    Linear,
    /// Cubic B-spline interpolation (`sitkBSpline`, PyRadiomics' default).
    BSpline,
}

impl Interpolator {
    /// Returns the interpolator of a SimpleITK name as PyRadiomics accepts it
    /// (`sitkBSpline`, `sitkLinear`, `sitkNearestNeighbor`), or `None`.
    pub fn from_sitk_name(name: &str) -> Option<Self> {
        match name {
            "sitkNearestNeighbor" => Some(Interpolator::Nearest),
            "sitkLinear" => Some(Interpolator::Linear),
            "sitkBSpline" | "sitkBSpline3" => Some(Interpolator::BSpline),
            _ => None,
        }
    }
}

/// Settings of one resampling.
#[derive(Debug, Clone, PartialEq)]
pub struct ResampleSettings {
    /// Target spacing in mm per axis; 0 keeps the original spacing.
    pub spacing: [f64; 3],
    /// Image interpolator.
    pub interpolator: Interpolator,
    /// New voxels added around the ROI's bounding box on each side.
    pub pad_distance: f64,
}

/// Reason an image and label map cannot be resampled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResampleError {
    /// A target spacing is negative or not finite.
    #[error(
        "resampledPixelSpacing {spacing:?} has a negative or non-finite value; give mm > 0, or 0 to keep an axis"
    )]
    InvalidSpacing {
        /// The requested spacing.
        spacing: [f64; 3],
    },
    /// The label map has another grid than the image.
    #[error("the label map is not on the image grid; place it on the image grid before resampling")]
    GridMismatch,
    /// The label does not occur, so there is no bounding box to resample.
    #[error("label {label} has no voxel, so the ROI has no bounding box to resample around")]
    EmptyRoi {
        /// The label.
        label: u32,
    },
    /// No labelled voxel falls on a voxel centre of the new grid.
    #[error(
        "the ROI of label {label} vanishes when resampled to {spacing:?} mm: no new voxel centre \
         lies inside it; use a finer resampledPixelSpacing"
    )]
    RoiVanished {
        /// The label.
        label: u32,
        /// The spacing used.
        spacing: [f64; 3],
    },
}

/// An image and its label map on one new grid.
#[derive(Debug, Clone)]
pub struct Resampled {
    /// The interpolated image.
    pub image: Volume,
    /// The label map, by nearest neighbour.
    pub labels: Volume,
    /// Whether any interpolation happened (false when the spacing is the
    /// image's already).
    pub interpolated: bool,
}

/// Resamples `image` and `labels` (on the image grid, as
/// [`crate::mask::place_on_image_grid`] returns it) around the voxels equal
/// to `label`.
pub fn resample(
    image: &Volume,
    labels: &Volume,
    label: u32,
    settings: &ResampleSettings,
) -> Result<Resampled, ResampleError> {
    if settings.spacing.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(ResampleError::InvalidSpacing {
            spacing: settings.spacing,
        });
    }
    if labels.geometry.dims != image.geometry.dims || labels.data.dim() != image.data.dim() {
        return Err(ResampleError::GridMismatch);
    }
    let old = &image.geometry;
    let (bb_start, bb_size) =
        bounding_box(&labels.data, label as f64).ok_or(ResampleError::EmptyRoi { label })?;

    // Spacing 0, and axes where the ROI is one voxel thick, keep the old spacing.
    let spacing: [f64; 3] = std::array::from_fn(|axis| {
        let target = settings.spacing[axis];
        if target == 0.0 || bb_size[axis] == 1 {
            old.spacing[axis]
        } else {
            target
        }
    });
    let unchanged = (0..3)
        .all(|axis| (old.spacing[axis] - spacing[axis]).abs() <= 1e-8 + 1e-5 * spacing[axis].abs());
    if unchanged {
        return Ok(Resampled {
            image: image.clone(),
            labels: labels.clone(),
            interpolated: false,
        });
    }

    // The new grid: the ROI's box plus padding, clipped to the old extent.
    let mut dims = [0usize; 3];
    let mut first_index = [0f64; 3];
    for axis in 0..3 {
        let ratio = old.spacing[axis] / spacing[axis];
        let start = bb_start[axis] as f64;
        let end = (bb_start[axis] + bb_size[axis]) as f64;
        let lower = ((start - 0.5) * ratio - settings.pad_distance)
            .floor()
            .max(0.0);
        let upper_limit = (old.dims[axis] as f64 * ratio).ceil() - 1.0;
        let upper = ((end - 0.5) * ratio + settings.pad_distance)
            .ceil()
            .min(upper_limit);
        dims[axis] = (upper - lower + 1.0).max(1.0) as usize;
        // Old continuous index of new voxel 0.
        first_index[axis] =
            0.5 * (spacing[axis] - old.spacing[axis]) / old.spacing[axis] + lower / ratio;
    }
    let origin = index_to_point(old, first_index);
    let geometry = Geometry {
        dims,
        spacing,
        origin,
        direction: old.direction,
    };

    // Old continuous index of every new voxel, per axis, from the physical
    // point as ITK maps it.
    let positions: [Vec<f64>; 3] = std::array::from_fn(|axis| {
        (0..dims[axis])
            .map(|n| {
                let mut index = [0.0; 3];
                index[axis] = n as f64;
                point_to_index(old, index_to_point(&geometry, index))[axis]
            })
            .collect()
    });

    let resampled_labels = sample(&labels.data, &positions, Interpolator::Nearest);
    if !resampled_labels.iter().any(|&value| value == label as f64) {
        return Err(ResampleError::RoiVanished { label, spacing });
    }
    let mut data = match settings.interpolator {
        Interpolator::BSpline => {
            let coefficients = bspline_coefficients(&image.data);
            sample_bspline(&coefficients, &positions)
        }
        other => sample(&image.data, &positions, other),
    };
    if image.stored_as_integer {
        data.mapv_inplace(f64::trunc);
    }

    Ok(Resampled {
        image: Volume {
            data,
            geometry: geometry.clone(),
            stored_as_integer: image.stored_as_integer,
        },
        labels: Volume {
            data: resampled_labels,
            geometry,
            stored_as_integer: labels.stored_as_integer,
        },
        interpolated: true,
    })
}

/// Returns the first index and the size of the bounding box of the voxels
/// equal to `value`, or `None` when there is none.
fn bounding_box(data: &Array3<f64>, value: f64) -> Option<([usize; 3], [usize; 3])> {
    let mut low = [usize::MAX; 3];
    let mut high = [0usize; 3];
    for ((i, j, k), &v) in data.indexed_iter() {
        if v == value {
            for (axis, index) in [i, j, k].into_iter().enumerate() {
                low[axis] = low[axis].min(index);
                high[axis] = high[axis].max(index);
            }
        }
    }
    if low[0] == usize::MAX {
        return None;
    }
    Some((low, std::array::from_fn(|axis| high[axis] - low[axis] + 1)))
}

/// Returns the physical point of a continuous index.
fn index_to_point(geometry: &Geometry, index: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|row| {
        geometry.origin[row]
            + (0..3)
                .map(|column| {
                    geometry.direction[row][column] * geometry.spacing[column] * index[column]
                })
                .sum::<f64>()
    })
}

/// Returns the continuous index of a physical point (the direction is
/// orthonormal, so its inverse is its transpose).
fn point_to_index(geometry: &Geometry, point: [f64; 3]) -> [f64; 3] {
    let offset: [f64; 3] = std::array::from_fn(|row| point[row] - geometry.origin[row]);
    std::array::from_fn(|column| {
        (0..3)
            .map(|row| geometry.direction[row][column] * offset[row])
            .sum::<f64>()
            / geometry.spacing[column]
    })
}

/// Returns whether a continuous index lies in the image's extent,
/// −½ ≤ x < size − ½ on every axis.
fn inside(index: [f64; 3], dims: [usize; 3]) -> bool {
    (0..3).all(|axis| index[axis] >= -0.5 && index[axis] < dims[axis] as f64 - 0.5)
}

/// Samples `data` by nearest neighbour or trilinear interpolation at every
/// combination of the per-axis positions.
fn sample(
    data: &Array3<f64>,
    positions: &[Vec<f64>; 3],
    interpolator: Interpolator,
) -> Array3<f64> {
    let dims = data.dim();
    let dims = [dims.0, dims.1, dims.2];
    let shape = (positions[0].len(), positions[1].len(), positions[2].len());
    Array3::from_shape_fn(shape, |(a, b, c)| {
        let index = [positions[0][a], positions[1][b], positions[2][c]];
        if !inside(index, dims) {
            return 0.0;
        }
        match interpolator {
            Interpolator::Nearest => {
                let nearest: [usize; 3] = std::array::from_fn(|axis| {
                    ((index[axis] + 0.5).floor().max(0.0) as usize).min(dims[axis] - 1)
                });
                data[nearest]
            }
            _ => trilinear(data, index, dims),
        }
    })
}

/// Trilinear interpolation with neighbours clamped to the image.
fn trilinear(data: &Array3<f64>, index: [f64; 3], dims: [usize; 3]) -> f64 {
    let mut base = [0usize; 3];
    let mut fraction = [0f64; 3];
    for axis in 0..3 {
        let floor = index[axis].floor().max(0.0);
        base[axis] = (floor as usize).min(dims[axis] - 1);
        fraction[axis] = (index[axis] - base[axis] as f64).clamp(0.0, 1.0);
    }
    let mut value = 0.0;
    for corner in 0..8 {
        let mut weight = 1.0;
        let mut at = [0usize; 3];
        for axis in 0..3 {
            let upper = (corner >> axis) & 1 == 1;
            at[axis] = if upper {
                (base[axis] + 1).min(dims[axis] - 1)
            } else {
                base[axis]
            };
            weight *= if upper {
                fraction[axis]
            } else {
                1.0 - fraction[axis]
            };
        }
        if weight != 0.0 {
            value += weight * data[at];
        }
    }
    value
}

/// Pole of the cubic B-spline prefilter.
const POLE: f64 = -0.267_949_192_431_122_7; // √3 − 2

/// Horizon tolerance of the causal initialisation.
const TOLERANCE: f64 = 1e-10;

/// Returns the cubic B-spline coefficients of `data`: the recursive
/// prefilter along each axis in turn.
pub(crate) fn bspline_coefficients(data: &Array3<f64>) -> Array3<f64> {
    let mut coefficients = data.clone();
    let mut line = Vec::new();
    for axis in 0..3 {
        for mut lane in coefficients.lanes_mut(Axis(axis)) {
            line.clear();
            line.extend(lane.iter().copied());
            prefilter_line(&mut line);
            for (target, value) in lane.iter_mut().zip(&line) {
                *target = *value;
            }
        }
    }
    coefficients
}

/// Turns samples into cubic B-spline coefficients in place, with mirror
/// boundaries (c[−k] = c[k], c[N−1+k] = c[N−1−k]).
fn prefilter_line(line: &mut [f64]) {
    let n = line.len();
    if n < 2 {
        return;
    }
    let z = POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for value in line.iter_mut() {
        *value *= gain;
    }

    // Causal start: the sum of z^k c[k], truncated where |z|^k < tolerance,
    // or exact over the mirrored signal when the line is shorter.
    let horizon = (TOLERANCE.ln() / z.abs().ln()).ceil() as usize;
    if horizon < n {
        let mut power = z;
        let mut sum = line[0];
        for value in &line[1..horizon] {
            sum += power * value;
            power *= z;
        }
        line[0] = sum;
    } else {
        let mut power = z;
        let inverse = 1.0 / z;
        let mut mirrored = z.powi(n as i32 - 1);
        let mut sum = line[0] + mirrored * line[n - 1];
        // z^(N-1) · z^(N-1) / z = z^(2N-3), the mirrored weight of k = 1.
        mirrored = mirrored * (mirrored * inverse);
        for value in &line[1..n - 1] {
            sum += (power + mirrored) * value;
            power *= z;
            mirrored *= inverse;
        }
        line[0] = sum / (1.0 - power * power);
    }
    for k in 1..n {
        line[k] += z * line[k - 1];
    }

    // Anti-causal pass, started from the mirror condition at the end.
    line[n - 1] = (z / (z * z - 1.0)) * (z * line[n - 2] + line[n - 1]);
    for k in (0..n - 1).rev() {
        line[k] = z * (line[k + 1] - line[k]);
    }
}

/// Mirrors an index into 0 … n − 1 without repeating the edge sample.
fn mirror(index: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let mut folded = index.rem_euclid(period);
    if folded >= n as i64 {
        folded = period - folded;
    }
    folded as usize
}

/// Returns the 4 cubic B-spline weights and the first of the 4 indices
/// for continuous position x.
pub(crate) fn bspline_weights(x: f64) -> ([f64; 4], i64) {
    let floor = x.floor();
    let t = x - floor;
    let w3 = t * t * t / 6.0;
    let w0 = 1.0 / 6.0 + 0.5 * t * (t - 1.0) - w3;
    let w2 = t + w0 - 2.0 * w3;
    let w1 = 1.0 - w0 - w2 - w3;
    ([w0, w1, w2, w3], floor as i64 - 1)
}

/// Evaluates the cubic B-spline of `coefficients` at every combination of
/// the per-axis positions; 0 outside the image extent.
fn sample_bspline(coefficients: &Array3<f64>, positions: &[Vec<f64>; 3]) -> Array3<f64> {
    let dims = coefficients.dim();
    let dims = [dims.0, dims.1, dims.2];
    // Weights and mirrored indices per axis and position, computed once.
    let support: [Vec<([f64; 4], [usize; 4])>; 3] = std::array::from_fn(|axis| {
        positions[axis]
            .iter()
            .map(|&x| {
                let (weights, first) = bspline_weights(x);
                let indices = std::array::from_fn(|m| mirror(first + m as i64, dims[axis]));
                (weights, indices)
            })
            .collect()
    });
    let shape = (positions[0].len(), positions[1].len(), positions[2].len());
    Array3::from_shape_fn(shape, |(a, b, c)| {
        let index = [positions[0][a], positions[1][b], positions[2][c]];
        if !inside(index, dims) {
            return 0.0;
        }
        let (wi, ii) = &support[0][a];
        let (wj, jj) = &support[1][b];
        let (wk, kk) = &support[2][c];
        let mut value = 0.0;
        for p in 0..4 {
            for q in 0..4 {
                let weight = wi[p] * wj[q];
                let mut sum = 0.0;
                for r in 0..4 {
                    sum += wk[r] * coefficients[[ii[p], jj[q], kk[r]]];
                }
                value += weight * sum;
            }
        }
        value
    })
}

#[cfg(test)]
mod tests;
