//! Patient anatomy shared by all sequences: the tissue and fat fields and
//! the lesion with its core and rim.

use ndarray::Array3;
use rand::Rng;
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::random_field::smooth_noise;
use super::{SyntheticSpec, derive_rng};

/// Smallest lesion semi-axis, in mm.
const LESION_RADIUS_MIN_MM: f64 = 6.0;
/// Largest lesion semi-axis, in mm.
const LESION_RADIUS_MAX_MM: f64 = 14.0;
/// Number of cosine waves that perturb the lesion surface.
const SURFACE_WAVES: usize = 4;
/// Largest amplitude of one surface wave, relative to the radius.
const SURFACE_WAVE_AMPLITUDE_MAX: f64 = 0.06;
/// Largest total relative surface perturbation (the sum of all amplitudes).
const SURFACE_PERTURBATION_MAX: f64 = SURFACE_WAVES as f64 * SURFACE_WAVE_AMPLITUDE_MAX;
/// Largest rotation about each axis, in radians (20°).
const ROTATION_MAX_RAD: f64 = 0.35;
/// Width of the blurred lesion edge, in mm along the radius.
const LESION_EDGE_MM: f64 = 1.0;
/// Width of the blurred core–rim transition, in mm along the radius.
const CORE_EDGE_MM: f64 = 1.5;
/// Minimum gap between the lesion and each face of the volume, in voxels.
pub(super) const BORDER_MARGIN_VOXELS: f64 = 2.0;
/// Gaussian smoothing scale of the tissue texture, in mm.
const TISSUE_TEXTURE_SIGMA_MM: f64 = 2.0;
/// Gaussian smoothing scale of the fat lobules, in mm.
const FAT_SIGMA_MM: f64 = 4.0;
/// Gaussian smoothing scale of the lesion texture, in mm.
const LESION_TEXTURE_SIGMA_MM: f64 = 1.0;
/// Threshold on the unit-SD fat field above which tissue turns to fat (about 24 % fat).
const FAT_THRESHOLD: f32 = 0.7;
/// Softness of the tissue–fat transition, in units of the fat field's SD.
const FAT_SOFTNESS: f32 = 0.15;
/// Median core texture strength of negative lesions, relative to positives.
const NEGATIVE_HETEROGENEITY: f64 = 0.65;
/// SD of the log texture strength within each class.
const HETEROGENEITY_LOG_SD: f64 = 0.35;
/// SD of the patient's relative lesion contrast (conspicuity).
const LESION_CONTRAST_RELATIVE_SD: f64 = 0.15;
/// SD of the patient's overall signal scale (coil loading), as a log factor.
const PATIENT_SCALE_LOG_SD: f64 = 0.05;

/// Sequence-independent description of one patient, stored per voxel in C
/// order (z fastest) on the spec's grid.
pub(super) struct Anatomy {
    dims: [usize; 3],
    pub(super) label: u8,
    /// Fat fraction in [0, 1] of the background tissue.
    pub(super) fat_fraction: Vec<f32>,
    /// Unit-SD smooth texture of the background tissue.
    pub(super) tissue_texture: Vec<f32>,
    /// Unit-SD fine texture inside the lesion.
    pub(super) lesion_texture: Vec<f32>,
    /// Lesion partial-volume weight in [0, 1]. The mask is `weight >= 0.5`.
    pub(super) lesion_weight: Vec<f32>,
    /// Core weight in [0, 1] inside the lesion (0 in the rim).
    pub(super) core_weight: Vec<f32>,
    /// Core texture strength, log-normal with a class-dependent median.
    pub(super) heterogeneity: f32,
    /// Patient's relative lesion contrast, around 1.
    pub(super) lesion_contrast_scale: f32,
    /// Patient's overall signal scale, around 1.
    pub(super) patient_scale: f32,
}

impl Anatomy {
    pub(super) fn generate(
        spec: &SyntheticSpec,
        center_id: &str,
        patient_id: &str,
        label: u8,
    ) -> Self {
        let mut rng = derive_rng(spec.seed, &["anatomy", center_id, patient_id]);

        let log_median = if label == 1 {
            0.0
        } else {
            NEGATIVE_HETEROGENEITY.ln()
        };
        let heterogeneity = normal_draw(&mut rng, log_median, HETEROGENEITY_LOG_SD).exp();
        let lesion_contrast_scale = normal_draw(&mut rng, 1.0, LESION_CONTRAST_RELATIVE_SD);
        let patient_scale = normal_draw(&mut rng, 0.0, PATIENT_SCALE_LOG_SD).exp();

        let fat_field = smooth_noise(&mut rng, spec.dims, spec.spacing_mm, FAT_SIGMA_MM);
        let fat_fraction = fat_field
            .iter()
            .map(|&value| sigmoid((value - FAT_THRESHOLD) / FAT_SOFTNESS))
            .collect();
        let tissue_texture = smooth_noise(
            &mut rng,
            spec.dims,
            spec.spacing_mm,
            TISSUE_TEXTURE_SIGMA_MM,
        );
        let lesion_texture = smooth_noise(
            &mut rng,
            spec.dims,
            spec.spacing_mm,
            LESION_TEXTURE_SIGMA_MM,
        );

        let shape = LesionShape::draw(&mut rng, spec);
        let (lesion_weight, core_weight) = shape.rasterize(spec);

        Anatomy {
            dims: spec.dims,
            label,
            fat_fraction,
            tissue_texture,
            lesion_texture,
            lesion_weight,
            core_weight,
            heterogeneity: heterogeneity as f32,
            lesion_contrast_scale: lesion_contrast_scale as f32,
            patient_scale: patient_scale as f32,
        }
    }

    /// Returns the lesion mask: 1 where the lesion weight is at least 0.5.
    pub(super) fn mask_array(&self) -> Array3<u8> {
        let [nx, ny, nz] = self.dims;
        Array3::from_shape_fn((nx, ny, nz), |(i, j, k)| {
            u8::from(self.lesion_weight[(i * ny + j) * nz + k] >= 0.5)
        })
    }
}

fn normal_draw(rng: &mut Xoshiro256PlusPlus, mean: f64, sd: f64) -> f64 {
    mean + sd * rng.sample::<f64, _>(StandardNormal)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Geometry of one lesion, in mm with voxel (0, 0, 0) at the origin.
struct LesionShape {
    center_mm: [f64; 3],
    radii_mm: [f64; 3],
    /// Rows map a world offset into the lesion's own axes.
    rotation: [[f64; 3]; 3],
    waves: [SurfaceWave; SURFACE_WAVES],
    /// Core boundary as a fraction of the (perturbed) lesion radius.
    core_fraction: f64,
}

/// One low-frequency cosine wave on the unit sphere of directions.
#[derive(Clone, Copy, Default)]
struct SurfaceWave {
    direction: [f64; 3],
    frequency: f64,
    phase: f64,
    amplitude: f64,
}

/// Largest distance from the lesion center to its surface, in mm.
pub(super) fn max_bounding_radius_mm() -> f64 {
    LESION_RADIUS_MAX_MM * (1.0 + SURFACE_PERTURBATION_MAX) + LESION_EDGE_MM
}

impl LesionShape {
    fn draw(rng: &mut Xoshiro256PlusPlus, spec: &SyntheticSpec) -> Self {
        let base_radius = rng.gen_range(7.0..11.5);
        let mut radii_mm = [0.0; 3];
        for radius in &mut radii_mm {
            let aspect: f64 = rng.gen_range(-0.25..0.25);
            *radius =
                (base_radius * aspect.exp()).clamp(LESION_RADIUS_MIN_MM, LESION_RADIUS_MAX_MM);
        }

        let angles: [f64; 3] = [
            rng.gen_range(-ROTATION_MAX_RAD..ROTATION_MAX_RAD),
            rng.gen_range(-ROTATION_MAX_RAD..ROTATION_MAX_RAD),
            rng.gen_range(-ROTATION_MAX_RAD..ROTATION_MAX_RAD),
        ];
        let rotation = rotation_matrix(angles);

        let mut waves = [SurfaceWave::default(); SURFACE_WAVES];
        for wave in &mut waves {
            *wave = SurfaceWave {
                direction: random_unit_vector(rng),
                frequency: rng.gen_range(1.0..2.5) * std::f64::consts::PI,
                phase: rng.gen_range(0.0..std::f64::consts::TAU),
                amplitude: rng.gen_range(0.02..SURFACE_WAVE_AMPLITUDE_MAX),
            };
        }
        let core_fraction = rng.gen_range(0.55..0.72);

        // Keep the bounding sphere of this lesion BORDER_MARGIN_VOXELS away
        // from every face; validate_spec guarantees the range is non-empty.
        let bounding = radii_mm.iter().cloned().fold(0.0, f64::max)
            * (1.0 + SURFACE_PERTURBATION_MAX)
            + LESION_EDGE_MM;
        let mut center_mm = [0.0; 3];
        for (axis, center) in center_mm.iter_mut().enumerate() {
            let spacing = spec.spacing_mm[axis];
            let extent = (spec.dims[axis] - 1) as f64 * spacing;
            let low = bounding + BORDER_MARGIN_VOXELS * spacing;
            let high = extent - low;
            *center = if high > low {
                rng.gen_range(low..high)
            } else {
                extent / 2.0
            };
        }

        LesionShape {
            center_mm,
            radii_mm,
            rotation,
            waves,
            core_fraction,
        }
    }

    /// Returns the relative lesion radius at an offset from the center: below
    /// 1 inside the lesion, 1 on its perturbed surface.
    fn relative_radius(&self, offset_mm: [f64; 3]) -> f64 {
        let mut scaled = [0.0; 3];
        for (row, value) in self.rotation.iter().zip(&mut scaled) {
            *value = row[0] * offset_mm[0] + row[1] * offset_mm[1] + row[2] * offset_mm[2];
        }
        for (value, radius) in scaled.iter_mut().zip(&self.radii_mm) {
            *value /= radius;
        }
        let norm = (scaled[0] * scaled[0] + scaled[1] * scaled[1] + scaled[2] * scaled[2]).sqrt();
        if norm == 0.0 {
            return 0.0;
        }

        let mut perturbation = 0.0;
        for wave in &self.waves {
            let cosine = (wave.direction[0] * scaled[0]
                + wave.direction[1] * scaled[1]
                + wave.direction[2] * scaled[2])
                / norm;
            perturbation += wave.amplitude * (wave.frequency * cosine + wave.phase).cos();
        }
        norm / (1.0 + perturbation)
    }

    /// Computes the lesion and core weights on the grid. Both ramp linearly
    /// across a shell of about LESION_EDGE_MM and CORE_EDGE_MM around their
    /// boundaries.
    fn rasterize(&self, spec: &SyntheticSpec) -> (Vec<f32>, Vec<f32>) {
        let [nx, ny, nz] = spec.dims;
        let mut lesion_weight = vec![0.0f32; nx * ny * nz];
        let mut core_weight = vec![0.0f32; nx * ny * nz];

        let mean_radius = self.radii_mm.iter().sum::<f64>() / 3.0;
        let lesion_edge = LESION_EDGE_MM / mean_radius;
        let core_edge = CORE_EDGE_MM / mean_radius;
        let bounding = self.radii_mm.iter().cloned().fold(0.0, f64::max)
            * (1.0 + SURFACE_PERTURBATION_MAX)
            + LESION_EDGE_MM;

        // Only voxels inside the bounding box of the bounding sphere can
        // have a non-zero weight.
        let mut ranges = [(0usize, 0usize); 3];
        for (axis, range) in ranges.iter_mut().enumerate() {
            let spacing = spec.spacing_mm[axis];
            let low = ((self.center_mm[axis] - bounding) / spacing)
                .floor()
                .max(0.0) as usize;
            let high = ((self.center_mm[axis] + bounding) / spacing).ceil() as usize;
            *range = (low, high.min(spec.dims[axis] - 1));
        }

        for i in ranges[0].0..=ranges[0].1 {
            for j in ranges[1].0..=ranges[1].1 {
                for k in ranges[2].0..=ranges[2].1 {
                    let offset = [
                        i as f64 * spec.spacing_mm[0] - self.center_mm[0],
                        j as f64 * spec.spacing_mm[1] - self.center_mm[1],
                        k as f64 * spec.spacing_mm[2] - self.center_mm[2],
                    ];
                    let radius = self.relative_radius(offset);
                    let index = (i * ny + j) * nz + k;
                    lesion_weight[index] = ramp((1.0 - radius) / lesion_edge);
                    core_weight[index] = ramp((self.core_fraction - radius) / core_edge);
                }
            }
        }
        (lesion_weight, core_weight)
    }
}

/// Maps a signed distance in units of the edge width to a weight: 0.5 on
/// the boundary, 1 half a width inside, 0 half a width outside.
fn ramp(distance: f64) -> f32 {
    (0.5 + distance).clamp(0.0, 1.0) as f32
}

/// Returns the rotation matrix `Rz · Ry · Rx` for the given angles in radians.
fn rotation_matrix([ax, ay, az]: [f64; 3]) -> [[f64; 3]; 3] {
    let (sx, cx) = ax.sin_cos();
    let (sy, cy) = ay.sin_cos();
    let (sz, cz) = az.sin_cos();
    [
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
}

fn random_unit_vector(rng: &mut Xoshiro256PlusPlus) -> [f64; 3] {
    loop {
        let vector: [f64; 3] = [
            rng.sample(StandardNormal),
            rng.sample(StandardNormal),
            rng.sample(StandardNormal),
        ];
        let norm = (vector[0] * vector[0] + vector[1] * vector[1] + vector[2] * vector[2]).sqrt();
        if norm > 1e-9 {
            return [vector[0] / norm, vector[1] / norm, vector[2] / norm];
        }
    }
}
