//! Sequence contrasts and the rendering of one sequence of a patient:
//! intensities per tissue class, texture, bias field and noise.

use ndarray::Array3;
use rand::Rng;
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::anatomy::Anatomy;
use super::{SyntheticCenterSpec, SyntheticSpec, derive_rng};

/// Relative amplitude of the tissue texture.
const TISSUE_TEXTURE_RELATIVE_SD: f32 = 0.04;
/// Rim texture amplitude relative to the core texture amplitude at strength 1.
const RIM_TEXTURE_RATIO: f32 = 0.4;
/// Exponent of the texture strength in the rim amplitude, so the rim changes
/// far less between classes than the core.
const RIM_HETEROGENEITY_EXPONENT: f32 = 0.3;
/// SD of the linear bias field coefficients, as a log factor per half field of view.
const BIAS_LINEAR_SD: f64 = 0.06;
/// SD of the quadratic bias field coefficients.
const BIAS_QUADRATIC_SD: f64 = 0.04;
/// Largest stored intensity. Rendered values are clamped to
/// `[0, INTENSITY_MAX]` before the cast to int16.
const INTENSITY_MAX: f32 = i16::MAX as f32;

/// Noise-free intensities (a.u., before gain and bias) of one sequence.
#[derive(Debug)]
pub(super) struct Contrast {
    pub(super) name: &'static str,
    tissue: f32,
    fat: f32,
    rim: f32,
    core: f32,
    /// Added to the core mean of positive lesions.
    positive_core_shift: f32,
    /// SD of the core texture at texture strength 1.
    core_texture_sd: f32,
}

const CONTRASTS: [Contrast; 3] = [
    Contrast {
        name: "T1W",
        tissue: 300.0,
        fat: 470.0,
        rim: 215.0,
        core: 185.0,
        positive_core_shift: -10.0,
        core_texture_sd: 32.0,
    },
    Contrast {
        name: "T2W",
        tissue: 280.0,
        fat: 400.0,
        rim: 400.0,
        core: 450.0,
        positive_core_shift: 15.0,
        core_texture_sd: 45.0,
    },
    Contrast {
        name: "T2FS",
        tissue: 250.0,
        fat: 70.0,
        rim: 430.0,
        core: 500.0,
        positive_core_shift: 18.0,
        core_texture_sd: 50.0,
    },
];

pub(super) fn contrast_for(name: &str) -> Option<&'static Contrast> {
    CONTRASTS.iter().find(|contrast| contrast.name == name)
}

/// Renders one sequence of a patient: contrast, bias field, gain and noise.
pub(super) fn render_sequence(
    spec: &SyntheticSpec,
    center: &SyntheticCenterSpec,
    patient_id: &str,
    anatomy: &Anatomy,
    contrast: &Contrast,
) -> Array3<i16> {
    let mut rng = derive_rng(
        spec.seed,
        &["sequence", &center.center_id, patient_id, contrast.name],
    );
    let bias = BiasField::draw(&mut rng);
    let noise_sd = center.noise_sd as f32;

    let tissue = contrast.tissue;
    let lesion_contrast = anatomy.lesion_contrast_scale;
    let core_mean = tissue
        + lesion_contrast * (contrast.core - tissue)
        + f32::from(anatomy.label) * contrast.positive_core_shift;
    let rim_mean = tissue + lesion_contrast * (contrast.rim - tissue);
    let core_texture_sd = contrast.core_texture_sd * anatomy.heterogeneity;
    let rim_texture_sd = contrast.core_texture_sd
        * RIM_TEXTURE_RATIO
        * anatomy.heterogeneity.powf(RIM_HETEROGENEITY_EXPONENT);
    let scale = center.gain as f32 * anatomy.patient_scale;

    let [nx, ny, nz] = spec.dims;
    let mut image = Array3::<i16>::zeros((nx, ny, nz));
    for (index, ((i, j, k), voxel)) in image.indexed_iter_mut().enumerate() {
        let fat = anatomy.fat_fraction[index];
        let texture = 1.0 + TISSUE_TEXTURE_RELATIVE_SD * anatomy.tissue_texture[index];
        let background = ((1.0 - fat) * tissue + fat * contrast.fat) * texture;

        let lesion_weight = anatomy.lesion_weight[index];
        let signal = if lesion_weight > 0.0 {
            let lesion_texture = anatomy.lesion_texture[index];
            let core = core_mean + core_texture_sd * lesion_texture;
            let rim = rim_mean + rim_texture_sd * lesion_texture;
            let core_weight = anatomy.core_weight[index];
            let lesion = core_weight * core + (1.0 - core_weight) * rim;
            (1.0 - lesion_weight) * background + lesion_weight * lesion
        } else {
            background
        };

        let position = normalized_position(spec.dims, [i, j, k]);
        let value = scale * bias.factor(position) * signal
            + noise_sd * rng.sample::<f32, _>(StandardNormal);
        *voxel = value.round().clamp(0.0, INTENSITY_MAX) as i16;
    }
    image
}

/// Returns the voxel position scaled to [-1, 1] along each axis.
fn normalized_position(dims: [usize; 3], index: [usize; 3]) -> [f32; 3] {
    let mut position = [0.0; 3];
    for (axis, value) in position.iter_mut().enumerate() {
        let half = (dims[axis].max(2) - 1) as f32 / 2.0;
        *value = (index[axis] as f32 - half) / half;
    }
    position
}

/// Smooth multiplicative bias field: the exponential of a quadratic
/// polynomial in normalized coordinates.
struct BiasField {
    linear: [f32; 3],
    quadratic: [f32; 3],
    cross: [f32; 3],
}

impl BiasField {
    fn draw(rng: &mut Xoshiro256PlusPlus) -> Self {
        let mut draw = |sd: f64| (sd * rng.sample::<f64, _>(StandardNormal)) as f32;
        BiasField {
            linear: [
                draw(BIAS_LINEAR_SD),
                draw(BIAS_LINEAR_SD),
                draw(BIAS_LINEAR_SD),
            ],
            quadratic: [
                draw(BIAS_QUADRATIC_SD),
                draw(BIAS_QUADRATIC_SD),
                draw(BIAS_QUADRATIC_SD),
            ],
            cross: [
                draw(BIAS_QUADRATIC_SD),
                draw(BIAS_QUADRATIC_SD),
                draw(BIAS_QUADRATIC_SD),
            ],
        }
    }

    fn factor(&self, [x, y, z]: [f32; 3]) -> f32 {
        let exponent = self.linear[0] * x
            + self.linear[1] * y
            + self.linear[2] * z
            + self.quadratic[0] * x * x
            + self.quadratic[1] * y * y
            + self.quadratic[2] * z * z
            + self.cross[0] * x * y
            + self.cross[1] * x * z
            + self.cross[2] * y * z;
        exponent.exp()
    }
}
