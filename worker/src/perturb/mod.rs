//! Perturbed copies of an (image, mask) pair for the reproducibility filter.
//!
//! When no second reader re-segments the images, the robustness of each
//! feature is measured on P perturbed copies of every patient's image and
//! mask: features are extracted from every copy, and ICC(1,1) over the
//! copies measures how much of a feature's variation between patients survives
//! small changes of acquisition and segmentation. The design follows
//! A. Zwanenburg et al., "Assessing robustness of radiomic features by image
//! perturbation", Sci Rep 9, 614 (2019), arXiv 1806.06719. Each copy is the
//! chain, in this order:
//!
//! 1. rotation about the slice normal through the ROI centroid, by an angle
//!    θ ~ U(−max, +max) degrees ([`rotate`]). The image is resampled onto
//!    the original grid by cubic B-spline, the mask by nearest neighbour.
//!    [`Perturber::about_axis`] rotates about a given axis instead, so that
//!    sequences on different grids can turn together;
//! 2. additive Gaussian noise N(0, σ̂²), with σ̂ the noise level of the
//!    original image by the Haar wavelet MAD estimator ([`noise`]);
//! 3. mask volume adaptation by a distance r ~ U(−max, +max) mm: erosion for
//!    r < 0, dilation for r > 0 ([`volume_adapt`]).
//!
//! The angle and distance ranges are settings of [`PerturbationPlan`]
//! (defaults 10° and 1 mm). They are this project's defaults, not values
//! taken from the paper. Contour randomisation is not implemented.
//!
//! Reproducibility: repeat p draws from its own xoshiro256++ stream,
//! [`repeat_rng`]`(seed, p)`, in the fixed order θ, r, then one noise sample
//! per voxel. A copy therefore depends only on (image, mask, plan, seed, p),
//! never on which thread computes it or in which order.
//!
//! Output grid: each copy covers a box of the original grid around the ROI
//! ([`Perturber::region`]), not the whole image, with the same spacing and
//! direction and the origin moved to the box's first voxel. Rotating only
//! that box is what keeps the cost down. The box contains every voxel within
//! [`CROP_MARGIN_MM`] of any perturbed ROI the plan can produce, and the box
//! is the same for all repeats of a patient. Inside the box, the rotated
//! values before noise are bit for bit those of rotating the whole image,
//! because the B-spline coefficients are computed over the whole i–j extent
//! of the image.

pub mod bspline;
pub mod crop;
pub mod distance;
pub mod noise;
pub mod plan;
pub mod rotate;
pub mod volume_adapt;

#[cfg(test)]
mod test_volumes;

pub use plan::{PerturbationPlan, PlanError, ValidPlan};

use ndarray::s;
use rand::distributions::{Distribution, Uniform};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::image::Volume;
use crate::mask::{MIN_ROI_DIMENSIONS, Roi};
use bspline::InPlaneCubicBspline;
use crop::{CropBox, bounding_box};
use noise::{NoiseError, NoiseEstimate, add_gaussian_noise, estimate_noise_sigma};
use rotate::{InPlaneRotation, RotateError, roi_centroid_mm, rotate_image, rotate_mask};
use volume_adapt::{VolumeAdaptError, adapt_volume, roi_from_mask};

/// Distance in mm around every perturbed ROI that each copy keeps, so that
/// a filter whose support reaches this far reads the same voxels as on the
/// whole image. 12 mm is four standard deviations of a Gaussian with
/// σ = 3 mm, the widest Laplacian-of-Gaussian scale the study plans
/// (σ = 1, 2 and 3 mm). At 4σ a Gaussian kernel has fallen to
/// e⁻⁸ ≈ 3·10⁻⁴ of its peak.
///
/// NOTE: the worker extracts features of the original image only, which
/// read ROI voxels alone. Revisit the margin when filtered image types are
/// added.
pub const CROP_MARGIN_MM: f64 = 12.0;

/// An error from making perturbed copies. Variants with `repeat` concern one
/// copy only, and the others concern the patient's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PerturbError {
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
    /// The input ROI has no voxel.
    #[error("ROI is empty; there is nothing to perturb")]
    EmptyRoi,
    /// The image contains a NaN or infinite value, which the B-spline prefilter
    /// would spread over its whole row and column.
    #[error(
        "image value {value} at voxel {voxel:?} is not finite; perturbation needs finite values"
    )]
    NonFiniteIntensity {
        /// The offending value.
        value: f64,
        /// Its voxel index (i, j, k).
        voxel: [usize; 3],
    },
    /// The image's noise level cannot be estimated.
    #[error("noise estimation failed: {0}")]
    NoiseEstimation(#[source] NoiseError),
    /// Rotation failed for one copy.
    #[error("repeat {repeat}: rotation failed: {source}")]
    Rotation {
        /// Index of the copy, from 0.
        repeat: u32,
        /// The cause.
        source: RotateError,
    },
    /// Adding noise failed for one copy.
    #[error("repeat {repeat}: adding noise failed: {source}")]
    Noise {
        /// Index of the copy, from 0.
        repeat: u32,
        /// The cause.
        source: NoiseError,
    },
    /// Growing or shrinking the mask failed for one copy.
    #[error("repeat {repeat}: volume adaptation failed: {source}")]
    VolumeAdaptation {
        /// Index of the copy, from 0.
        repeat: u32,
        /// The cause.
        source: VolumeAdaptError,
    },
    /// The perturbed ROI of one copy is empty or too thin for 3-D features,
    /// by the rule of [`crate::mask::select_label`].
    #[error(
        "repeat {repeat}: perturbed ROI (rotation {angle_deg:.3}°, volume change {volume_change_mm:.3} mm) has {voxels} voxels and spans more than one voxel along {dimensions} axes (extent {extent:?}); at least {MIN_ROI_DIMENSIONS} are needed"
    )]
    RoiTooSmall {
        /// Index of the copy, from 0.
        repeat: u32,
        /// Rotation angle of this copy, in degrees.
        angle_deg: f64,
        /// Grow/shrink distance of this copy, in mm.
        volume_change_mm: f64,
        /// Voxels in the perturbed ROI.
        voxels: usize,
        /// Axes along which the perturbed ROI spans more than one voxel.
        dimensions: usize,
        /// Bounding-box extent of the perturbed ROI along i, j, k.
        extent: [usize; 3],
    },
}

/// The random parameters of one perturbed copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draws {
    /// Rotation angle θ, in degrees.
    pub angle_deg: f64,
    /// Grow (> 0) or shrink (< 0) distance r, in mm.
    pub volume_change_mm: f64,
}

impl Draws {
    /// Draws θ ~ U(−max_angle, +max_angle), then r ~ U(−max_change,
    /// +max_change), both closed intervals.
    pub fn sample<R: Rng + ?Sized>(plan: &ValidPlan, rng: &mut R) -> Self {
        // The validated plan guarantees finite bounds with low ≤ high, the
        // only inputs for which `Uniform::new_inclusive` panics.
        let angle = Uniform::new_inclusive(-plan.max_angle_deg(), plan.max_angle_deg());
        let change =
            Uniform::new_inclusive(-plan.max_volume_change_mm(), plan.max_volume_change_mm());
        let angle_deg = angle.sample(rng);
        let volume_change_mm = change.sample(rng);
        Draws {
            angle_deg,
            volume_change_mm,
        }
    }
}

/// Returns the random stream of repeat `repeat`: xoshiro256++ seeded with
/// `seed` (through SplitMix64, as `seed_from_u64` does), advanced by
/// `repeat` jumps of 2¹²⁸ steps. The streams of different repeats cannot
/// overlap for fewer than 2¹²⁸ draws each.
pub fn repeat_rng(seed: u64, repeat: u32) -> Xoshiro256PlusPlus {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..repeat {
        rng.jump();
    }
    rng
}

/// Makes the P = `plan.repeats()` perturbed copies of one (image, ROI) pair.
/// The module documentation describes the chain, its conventions and the
/// output grid.
///
/// Stops at the first copy that fails, with an error naming its repeat.
/// Callers that keep the other copies use [`Perturber::copy`] per repeat.
pub fn perturbed_copies(
    image: &Volume,
    roi: &Roi,
    plan: &ValidPlan,
    seed: u64,
) -> Result<Vec<(Volume, Roi)>, PerturbError> {
    let perturber = Perturber::new(image, roi, plan)?;
    (0..plan.repeats())
        .map(|repeat| perturber.copy(seed, repeat))
        .collect()
}

/// The rotation axis of a copy, in the in-plane frame of the grid being
/// rotated. The axis is always the grid's slice normal (the k axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotationAxis {
    /// Point (x, y) in mm, in the frame of [`rotate::InPlaneRotation`],
    /// where the axis crosses each slice.
    pub centre_mm: [f64; 2],
    /// Whether a drawn angle turns this grid the opposite way in world
    /// space from the grid the axis was defined on, because the two grids'
    /// (i, j) axes have opposite handedness about the shared normal. The
    /// copy then rotates by −θ so that both turn the same way.
    pub reversed: bool,
}

/// The per-patient work shared by all copies: input checks, the noise
/// estimate, the rotation axis, the output box and the B-spline
/// coefficients.
#[derive(Debug)]
pub struct Perturber<'a> {
    image: &'a Volume,
    roi: &'a Roi,
    plan: ValidPlan,
    noise: Option<NoiseEstimate>,
    axis: RotationAxis,
    region: CropBox,
    spline: InPlaneCubicBspline,
}

impl<'a> Perturber<'a> {
    /// Checks the input and prepares the copies of one patient.
    ///
    /// Rejects an image with a non-finite value anywhere, also outside the
    /// box. The noise level is estimated on the whole original image, and
    /// only when the plan adds noise.
    pub fn new(image: &'a Volume, roi: &'a Roi, plan: &ValidPlan) -> Result<Self, PerturbError> {
        Self::with_axis(image, roi, plan, None)
    }

    /// Checks the input and prepares the copies of one patient, rotating
    /// about `axis` instead of the ROI centroid. Used for a sequence that
    /// must turn with another sequence on another grid: the caller maps
    /// that grid's axis onto this one.
    pub fn about_axis(
        image: &'a Volume,
        roi: &'a Roi,
        plan: &ValidPlan,
        axis: RotationAxis,
    ) -> Result<Self, PerturbError> {
        Self::with_axis(image, roi, plan, Some(axis))
    }

    fn with_axis(
        image: &'a Volume,
        roi: &'a Roi,
        plan: &ValidPlan,
        axis: Option<RotationAxis>,
    ) -> Result<Self, PerturbError> {
        let (ni, nj, nk) = image.data.dim();
        let dims = [ni, nj, nk];
        let (mi, mj, mk) = roi.mask.dim();
        if [mi, mj, mk] != dims {
            return Err(PerturbError::ShapeMismatch {
                image: dims,
                mask: [mi, mj, mk],
            });
        }
        if let Some(((i, j, k), &value)) = image
            .data
            .indexed_iter()
            .find(|(_, value)| !value.is_finite())
        {
            return Err(PerturbError::NonFiniteIntensity {
                value,
                voxel: [i, j, k],
            });
        }
        let spacing = image.geometry.spacing;
        let (Some((low, high)), Some(centre_mm)) =
            (bounding_box(&roi.mask), roi_centroid_mm(&roi.mask, spacing))
        else {
            return Err(PerturbError::EmptyRoi);
        };

        let noise = if plan.noise() {
            Some(estimate_noise_sigma(&image.data).map_err(PerturbError::NoiseEstimation)?)
        } else {
            None
        };

        let axis = axis.unwrap_or(RotationAxis {
            centre_mm,
            reversed: false,
        });
        let region = perturbation_region(dims, spacing, (low, high), axis.centre_mm, plan);
        let [_, _, k0] = region.start;
        let [_, _, k1] = region.end();
        let spline = InPlaneCubicBspline::new(image.data.slice(s![.., .., k0..k1]));

        Ok(Perturber {
            image,
            roi,
            plan: plan.clone(),
            noise,
            axis,
            region,
            spline,
        })
    }

    /// Returns the noise estimate of the original image, when the plan adds
    /// noise.
    pub fn noise_estimate(&self) -> Option<NoiseEstimate> {
        self.noise
    }

    /// Returns the rotation centre (x, y) in mm: the ROI centroid as
    /// [`rotate::roi_centroid_mm`] defines it, or the centre of the axis
    /// given to [`Perturber::about_axis`].
    pub fn centre_mm(&self) -> [f64; 2] {
        self.axis.centre_mm
    }

    /// Returns the box of the original grid that every copy covers.
    pub fn region(&self) -> CropBox {
        self.region
    }

    /// Makes perturbed copy `repeat` from the stream [`repeat_rng`]`(seed,
    /// repeat)`.
    pub fn copy(&self, seed: u64, repeat: u32) -> Result<(Volume, Roi), PerturbError> {
        let mut rng = repeat_rng(seed, repeat);
        let draws = Draws::sample(&self.plan, &mut rng);
        self.copy_with(repeat, draws, &mut rng)
    }

    /// Makes a copy with the given draws, taking the noise from `rng`.
    fn copy_with<R: Rng + ?Sized>(
        &self,
        repeat: u32,
        draws: Draws,
        rng: &mut R,
    ) -> Result<(Volume, Roi), PerturbError> {
        let spacing = self.image.geometry.spacing;

        // Step 1: rotation about the ROI centroid, or the given axis.
        let angle_deg = if self.axis.reversed {
            -draws.angle_deg
        } else {
            draws.angle_deg
        };
        let rotation =
            InPlaneRotation::new(angle_deg, self.axis.centre_mm, [spacing[0], spacing[1]])
                .map_err(|source| PerturbError::Rotation { repeat, source })?;
        let data = rotate_image(&self.image.data, &self.spline, &rotation, &self.region);
        let mask = rotate_mask(&self.roi.mask, &rotation, &self.region);

        // Step 2: additive Gaussian noise at the original image's level.
        let data = match self.noise {
            Some(estimate) => add_gaussian_noise(data, estimate.sigma, rng)
                .map_err(|source| PerturbError::Noise { repeat, source })?,
            None => data,
        };

        // Step 3: volume adaptation of the rotated mask.
        let roi = adapt_volume(&roi_from_mask(mask), spacing, draws.volume_change_mm)
            .map_err(|source| PerturbError::VolumeAdaptation { repeat, source })?;
        check_roi_size(&roi, repeat, draws)?;

        let unchanged_values =
            rotation.is_identity() && self.noise.is_none_or(|estimate| estimate.sigma == 0.0);
        let volume = Volume {
            data,
            geometry: self.region.geometry(&self.image.geometry),
            stored_as_integer: self.image.stored_as_integer && unchanged_values,
        };
        Ok((volume, roi))
    }
}

/// Returns the box of the grid that every copy covers: the ROI's bounding
/// box widened so that it contains every voxel within [`CROP_MARGIN_MM`] of any
/// perturbed ROI the plan can produce.
///
/// In the i–j plane the box is widened by the sum of
/// - the largest rotation shift, 2ρ·sin(max_angle/2), with ρ the largest
///   distance from the centre to a corner of the bounding box (no ROI voxel
///   is farther from the centre than the farthest corner);
/// - half a voxel diagonal, how far nearest-neighbour rounding moves a voxel;
/// - the largest dilation, max_volume_change_mm;
/// - [`CROP_MARGIN_MM`].
///
/// Along k, rotation moves nothing, so the box is widened by the largest
/// dilation plus [`CROP_MARGIN_MM`]. Each distance is rounded up to whole
/// voxels, and the box is clipped to the grid.
fn perturbation_region(
    dims: [usize; 3],
    spacing: [f64; 3],
    (low, high): ([usize; 3], [usize; 3]),
    centre_mm: [f64; 2],
    plan: &ValidPlan,
) -> CropBox {
    let [si, sj, sk] = spacing;
    let farthest_corner_mm = [low[0], high[0]]
        .into_iter()
        .flat_map(|i| [low[1], high[1]].into_iter().map(move |j| (i, j)))
        .map(|(i, j)| (i as f64 * si - centre_mm[0]).hypot(j as f64 * sj - centre_mm[1]))
        .fold(0.0, f64::max);
    let rotation_shift_mm =
        2.0 * farthest_corner_mm * (plan.max_angle_deg().to_radians() / 2.0).sin();
    let rounding_mm = 0.5 * si.hypot(sj);
    let in_plane_mm =
        rotation_shift_mm + rounding_mm + plan.max_volume_change_mm() + CROP_MARGIN_MM;
    let through_plane_mm = plan.max_volume_change_mm() + CROP_MARGIN_MM;

    // The float-to-integer cast saturates, and the box is clipped to the
    // grid, so a huge margin only selects the whole grid.
    let margin = [
        (in_plane_mm / si).ceil() as usize,
        (in_plane_mm / sj).ceil() as usize,
        (through_plane_mm / sk).ceil() as usize,
    ];
    CropBox::around(low, high, margin, dims)
}

/// Rejects a perturbed ROI that [`crate::mask::select_label`] would reject:
/// empty, or spanning more than one voxel along fewer than
/// [`MIN_ROI_DIMENSIONS`] axes.
///
/// NOTE: the mask module sets no minimum voxel count, so neither does this
/// check.
fn check_roi_size(roi: &Roi, repeat: u32, draws: Draws) -> Result<(), PerturbError> {
    let extent = match bounding_box(&roi.mask) {
        Some((low, high)) => std::array::from_fn(|axis| high[axis] - low[axis] + 1),
        None => [0; 3],
    };
    let dimensions = extent.iter().filter(|&&e| e > 1).count();
    if roi.voxel_count == 0 || dimensions < MIN_ROI_DIMENSIONS {
        return Err(PerturbError::RoiTooSmall {
            repeat,
            angle_deg: draws.angle_deg,
            volume_change_mm: draws.volume_change_mm,
            voxels: roi.voxel_count,
            dimensions,
            extent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
