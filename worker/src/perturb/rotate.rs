//! In-plane rotation of an image and its mask about a centre, resampled back
//! onto the original grid.
//!
//! Geometry: a voxel (i, j, k) sits at (x, y) = (i·s_i, j·s_j) mm in its
//! slice, with s_i, s_j the in-plane spacing, so anisotropic voxels rotate as
//! physical objects. A rotation by θ about the centre c maps a point p to
//! c + R(θ)(p − c), where
//!
//! ```text
//! R(θ) = | cos θ  −sin θ |
//!        | sin θ   cos θ |
//! ```
//!
//! so a positive angle turns the +i axis towards the +j axis. The axis of
//! rotation is the slice normal (the k axis), so k never changes and each
//! slice rotates about the same in-plane centre. The output value at voxel p
//! is the input read at the source point c + R(−θ)(p − c) (backward mapping,
//! so every output voxel gets exactly one value).
//!
//! Interpolation:
//!
//! - Image: cubic B-spline with prefiltering and mirror boundary
//!   ([`super::bspline`]). A source point outside the array reads the mirror
//!   extension of the image.
//! - Mask: nearest neighbour. The source index is rounded half away from
//!   zero (`f64::round`). A source point whose nearest voxel lies outside the
//!   array reads "outside the ROI".
//!
//! The rotation is done in the grid's own frame. It is a rigid rotation in
//! world space about the slice normal when the grid's i and j direction
//! cosines are orthogonal, as they are for any qform. A sheared sform makes
//! it a rotation in the grid frame only.
//!
//! Angles that are whole multiples of 90° use exact sines and cosines, and
//! an angle equivalent to 0° returns the input unchanged, bit for bit.

use ndarray::{Array3, ArrayView3};

use super::bspline::InPlaneCubicBspline;
use super::crop::CropBox;
use super::volume_adapt::roi_from_mask;
use crate::image::Volume;
use crate::mask::Roi;

/// An error from in-plane rotation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RotateError {
    /// Image and mask have different sizes.
    #[error(
        "mask size {mask:?} differs from image size {image:?}; the mask must be on the image grid"
    )]
    ShapeMismatch {
        /// Image size along i, j, k.
        image: [usize; 3],
        /// Mask size along i, j, k.
        mask: [usize; 3],
    },
    /// The angle is NaN or infinite.
    #[error("invalid rotation angle {angle_deg}°; expected a finite angle")]
    InvalidAngle {
        /// The requested angle, in degrees.
        angle_deg: f64,
    },
    /// The centre is NaN or infinite.
    #[error("invalid rotation centre {centre_mm:?} mm; expected finite coordinates")]
    InvalidCentre {
        /// The requested centre (x, y), in mm.
        centre_mm: [f64; 2],
    },
    /// An in-plane spacing is zero, negative or not finite.
    #[error("invalid in-plane spacing {spacing:?} mm; both must be finite and > 0")]
    InvalidSpacing {
        /// Spacing along i and j, in mm.
        spacing: [f64; 2],
    },
    /// The image contains a NaN or infinite value, which the B-spline prefilter
    /// would spread over its whole row and column.
    #[error(
        "image value {value} at voxel {voxel:?} is not finite; the B-spline prefilter needs finite values"
    )]
    NonFiniteIntensity {
        /// The offending value.
        value: f64,
        /// Its voxel index (i, j, k).
        voxel: [usize; 3],
    },
}

/// A rotation about the slice normal, mapping output voxels to source
/// points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InPlaneRotation {
    angle_deg: f64,
    cos: f64,
    sin: f64,
    centre_mm: [f64; 2],
    spacing: [f64; 2],
}

impl InPlaneRotation {
    /// Creates a rotation by `angle_deg` degrees about `centre_mm` = (x, y)
    /// in mm, on a grid with in-plane spacing `spacing` = (s_i, s_j) in mm.
    pub fn new(
        angle_deg: f64,
        centre_mm: [f64; 2],
        spacing: [f64; 2],
    ) -> Result<Self, RotateError> {
        if !angle_deg.is_finite() {
            return Err(RotateError::InvalidAngle { angle_deg });
        }
        if !centre_mm.iter().all(|c| c.is_finite()) {
            return Err(RotateError::InvalidCentre { centre_mm });
        }
        if !spacing.iter().all(|&s| s.is_finite() && s > 0.0) {
            return Err(RotateError::InvalidSpacing { spacing });
        }
        let (sin, cos) = sin_cos_degrees(angle_deg);
        Ok(InPlaneRotation {
            angle_deg,
            cos,
            sin,
            centre_mm,
            spacing,
        })
    }

    /// Returns the angle in degrees, as given.
    pub fn angle_deg(&self) -> f64 {
        self.angle_deg
    }

    /// Returns whether the rotation is by a whole multiple of 360°.
    pub fn is_identity(&self) -> bool {
        self.sin == 0.0 && self.cos == 1.0
    }

    /// Returns the source point, in fractional index units along i and j,
    /// that output voxel (i, j) reads.
    pub fn source_index(&self, i: usize, j: usize) -> [f64; 2] {
        let [si, sj] = self.spacing;
        let [cx, cy] = self.centre_mm;
        let dx = i as f64 * si - cx;
        let dy = j as f64 * sj - cy;
        // c + R(−θ)(p − c)
        let x = self.cos * dx + self.sin * dy + cx;
        let y = -self.sin * dx + self.cos * dy + cy;
        [x / si, y / sj]
    }
}

/// Returns (sin θ, cos θ) for θ in degrees, exact for whole multiples of 90°.
fn sin_cos_degrees(angle_deg: f64) -> (f64, f64) {
    // rem_euclid may round a tiny negative angle up to exactly 360.
    let reduced = angle_deg.rem_euclid(360.0);
    if reduced == 0.0 || reduced == 360.0 {
        (0.0, 1.0)
    } else if reduced == 90.0 {
        (1.0, 0.0)
    } else if reduced == 180.0 {
        (0.0, -1.0)
    } else if reduced == 270.0 {
        (-1.0, 0.0)
    } else {
        reduced.to_radians().sin_cos()
    }
}

/// Returns the ROI centroid (x, y) in mm in the frame of [`InPlaneRotation`]:
/// the mean of (i·s_i, j·s_j) over the ROI voxels. `None` for an empty mask.
pub fn roi_centroid_mm(mask: &Array3<bool>, spacing: [f64; 3]) -> Option<[f64; 2]> {
    // Index sums are exact in f64 below 2⁵³, far above any image size.
    let mut count = 0.0;
    let mut sum_i = 0.0;
    let mut sum_j = 0.0;
    for ((i, j, _), &inside) in mask.indexed_iter() {
        if inside {
            count += 1.0;
            sum_i += i as f64;
            sum_j += j as f64;
        }
    }
    (count > 0.0).then(|| [sum_i / count * spacing[0], sum_j / count * spacing[1]])
}

/// Rotates image and mask by `angle_deg` degrees about `centre_mm` (see the
/// module documentation for every convention) and resamples both onto the
/// original grid.
///
/// Use [`roi_centroid_mm`] for the centre to rotate about the ROI centroid.
/// The returned image keeps the input's geometry. Its values are no longer
/// whole numbers, so `stored_as_integer` is false unless the angle is
/// equivalent to 0°. ROI voxels whose rotated position leaves the array are
/// lost, so the returned ROI may be smaller or empty.
pub fn rotate_in_plane(
    image: &Volume,
    roi: &Roi,
    angle_deg: f64,
    centre_mm: [f64; 2],
) -> Result<(Volume, Roi), RotateError> {
    let dims = dims_of(image.data.dim());
    let mask_dims = dims_of(roi.mask.dim());
    if dims != mask_dims {
        return Err(RotateError::ShapeMismatch {
            image: dims,
            mask: mask_dims,
        });
    }
    let spacing = image.geometry.spacing;
    let rotation = InPlaneRotation::new(angle_deg, centre_mm, [spacing[0], spacing[1]])?;
    if rotation.is_identity() {
        return Ok((image.clone(), roi.clone()));
    }
    check_finite(image.data.view())?;

    let whole = CropBox::whole(dims);
    let spline = InPlaneCubicBspline::new(image.data.view());
    let data = rotate_image(&image.data, &spline, &rotation, &whole);
    let mask = rotate_mask(&roi.mask, &rotation, &whole);
    let rotated = Volume {
        data,
        geometry: image.geometry.clone(),
        stored_as_integer: false,
    };
    Ok((rotated, roi_from_mask(mask)))
}

/// Returns an error naming the first non-finite value, in `[i, j, k]` order.
pub(crate) fn check_finite(data: ArrayView3<f64>) -> Result<(), RotateError> {
    match data.indexed_iter().find(|(_, value)| !value.is_finite()) {
        Some(((i, j, k), &value)) => Err(RotateError::NonFiniteIntensity {
            value,
            voxel: [i, j, k],
        }),
        None => Ok(()),
    }
}

fn dims_of((a, b, c): (usize, usize, usize)) -> [usize; 3] {
    [a, b, c]
}

/// Resamples the rotated image on the voxels of `region`, a box of the grid
/// of `image`.
///
/// `spline` contains the coefficients of the slices `region.start[2]` up to
/// `region.end()[2]` of `image`, over the whole i–j extent, so that source
/// points outside the box read the true neighbouring voxels. The result is
/// indexed relative to the box.
pub(crate) fn rotate_image(
    image: &Array3<f64>,
    spline: &InPlaneCubicBspline,
    rotation: &InPlaneRotation,
    region: &CropBox,
) -> Array3<f64> {
    if rotation.is_identity() {
        return region.crop(image);
    }
    let [i0, j0, _] = region.start;
    let [ni, nj, nk] = region.shape;
    debug_assert_eq!(spline.slices(), nk, "the spline must hold the box's slices");
    let mut rotated = Array3::zeros((ni, nj, nk));
    let mut values = vec![0.0; nk];
    for i in 0..ni {
        for j in 0..nj {
            let [x, y] = rotation.source_index(i0 + i, j0 + j);
            // The source point is the same on every slice, so the weights
            // are computed once per (i, j).
            spline.sample_slices(x, y, &mut values);
            for (k, &value) in values.iter().enumerate() {
                rotated[[i, j, k]] = value;
            }
        }
    }
    rotated
}

/// Resamples the rotated mask by nearest neighbour on the voxels of
/// `region`, a box of the grid of `mask`. The result is indexed relative to
/// the box.
pub(crate) fn rotate_mask(
    mask: &Array3<bool>,
    rotation: &InPlaneRotation,
    region: &CropBox,
) -> Array3<bool> {
    if rotation.is_identity() {
        return region.crop(mask);
    }
    let (full_i, full_j, _) = mask.dim();
    let [i0, j0, k0] = region.start;
    let [ni, nj, nk] = region.shape;
    let mut rotated = Array3::from_elem((ni, nj, nk), false);
    for i in 0..ni {
        for j in 0..nj {
            let [x, y] = rotation.source_index(i0 + i, j0 + j);
            let (x, y) = (x.round(), y.round());
            // Comparing as f64 first keeps far-away points from wrapping
            // when converted to an index.
            if x < 0.0 || y < 0.0 || x >= full_i as f64 || y >= full_j as f64 {
                continue;
            }
            let (source_i, source_j) = (x as usize, y as usize);
            for k in 0..nk {
                rotated[[i, j, k]] = mask[[source_i, source_j, k0 + k]];
            }
        }
    }
    rotated
}

#[cfg(test)]
mod tests;
