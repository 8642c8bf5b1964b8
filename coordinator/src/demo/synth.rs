//! Seeded synthetic two-center MRI cohort for `radstudy demo`.
//!
//! Each patient gets one 3-D volume per MRI sequence plus a lesion mask, all
//! on the same voxel grid. A volume is a field of view cropped inside the
//! body: soft tissue of 250–300 a.u. (before the scanner gain, depending on
//! the sequence) with a fine texture, smooth fat lobules and a smooth
//! multiplicative bias field. It contains one lesion, an
//! ellipsoid with random radii (about 6–14 mm), a random rotation of up to
//! 20° about each axis and a surface perturbed by low-frequency waves, placed
//! at least two voxels from every face of the volume. The lesion has an inner
//! core and a marginal rim, and its edge is blurred over about 1 mm like a
//! partial-volume boundary. The mask is 1 on the lesion (core and rim) and 0
//! elsewhere, and every sequence of a patient shares the same mask.
//!
//! # What carries the outcome signal
//!
//! The binary label (1 = positive) changes the inner core only. Positive
//! cores have a stronger fine-grained (about 1 mm) texture, so their local
//! variance is higher, and a modest shift in mean intensity away from the
//! tissue. The rim texture grows only weakly with the core texture. Patients
//! of both classes overlap: the texture strength is log-normal within each
//! class, and lesion size, lesion contrast, partial volume, bias field and
//! noise all vary between patients. A whole-lesion first-order feature such
//! as the ROI intensity standard deviation therefore separates the classes
//! imperfectly: with [`SyntheticSpec::demo_default`] the univariate AUC of
//! the ROI SD within one center is 0.70–0.80 for both sequences and both
//! centers (the test `roi_features_separate_classes` recomputes this). Over
//! seeds 1000–1029 its mean was 0.78–0.81, measured once outside the tests.
//! The ROI 90th percentile separates less well: its AUC is about 0.6 on
//! `T2FS` and about 0.5 on `T1W`, where positive cores get darker but also
//! more spread out.
//!
//! # Sequences
//!
//! Each sequence name selects a contrast (see [`SUPPORTED_SEQUENCES`]):
//! `T1W` shows the lesion darker than tissue and fat bright, `T2W` shows
//! the lesion and fat bright, and `T2FS` shows the lesion bright on a
//! fat-suppressed (dark fat) background.
//!
//! # What differs between centers
//!
//! Each center has its own scanner gain, which multiplies all intensities,
//! and its own additive Gaussian noise SD, so raw intensity features shift
//! and spread between centers as they do between real scanners. Each center
//! also has its own number of patients and fraction of positives.
//!
//! # Determinism
//!
//! Everything follows from [`SyntheticSpec::seed`]. Each patient's random
//! generators are seeded by a SHA-256 hash of the seed, the center id, the
//! patient id and the purpose: anatomy, or bias and noise of one sequence.
//! A patient's files therefore do not depend on the order in which patients
//! are generated, on the number of threads, or on the other sequences in
//! the spec. The same spec gives byte-identical files.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::Array3;
use nifti::writer::WriterOptions;
use nifti::{Endianness, NiftiHeader, Unit, XForm};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use sha2::{Digest, Sha256};

/// Sequence names that [`generate`] accepts, each with its own contrast.
pub const SUPPORTED_SEQUENCES: [&str; 3] = ["T1W", "T2W", "T2FS"];

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
const BORDER_MARGIN_VOXELS: f64 = 2.0;

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
/// Relative amplitude of the tissue texture.
const TISSUE_TEXTURE_RELATIVE_SD: f32 = 0.04;

/// Median core texture strength of negative lesions, relative to positives.
const NEGATIVE_HETEROGENEITY: f64 = 0.65;
/// SD of the log texture strength within each class.
const HETEROGENEITY_LOG_SD: f64 = 0.35;
/// Rim texture amplitude relative to the core texture amplitude at strength 1.
const RIM_TEXTURE_RATIO: f32 = 0.4;
/// Exponent of the texture strength in the rim amplitude, so the rim changes
/// far less between classes than the core.
const RIM_HETEROGENEITY_EXPONENT: f32 = 0.3;
/// SD of the patient's relative lesion contrast (conspicuity).
const LESION_CONTRAST_RELATIVE_SD: f64 = 0.15;
/// SD of the patient's overall signal scale (coil loading), as a log factor.
const PATIENT_SCALE_LOG_SD: f64 = 0.05;
/// SD of the linear bias field coefficients, as a log factor per half field of view.
const BIAS_LINEAR_SD: f64 = 0.06;
/// SD of the quadratic bias field coefficients.
const BIAS_QUADRATIC_SD: f64 = 0.04;

/// Largest stored intensity. Rendered values are clamped to
/// `[0, INTENSITY_MAX]` before the cast to int16.
const INTENSITY_MAX: f32 = i16::MAX as f32;

/// Settings of one synthetic center (one scanner).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticCenterSpec {
    /// Center id, used as the directory name and as the patient id prefix.
    /// Letters, digits, `_` and `-` only.
    pub center_id: String,
    /// Number of patients, at least 1.
    pub n_patients: usize,
    /// Fraction of positive patients in `[0, 1]`. The center gets exactly
    /// `round(positive_fraction × n_patients)` positives.
    pub positive_fraction: f64,
    /// Scanner gain that multiplies every intensity. Must be positive.
    pub gain: f64,
    /// SD of the additive Gaussian noise, in stored intensity units (after
    /// the gain). Must be non-negative.
    pub noise_sd: f64,
}

/// Settings of a whole synthetic cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// Seed from which every random draw is derived.
    pub seed: u64,
    /// Volume size in voxels along x, y and z, each at most 32767. Along each
    /// axis, `(n - 1) × spacing` must be at least 2 × (18.36 mm + 2 voxels),
    /// the largest lesion's bounding sphere plus the margin: for example
    /// 46 voxels at 0.9 mm or 18 at 3 mm.
    pub dims: [usize; 3],
    /// Voxel spacing in mm along x, y and z. The volume's center is at the
    /// world origin, with identity direction.
    pub spacing_mm: [f64; 3],
    /// Sequence names, each from [`SUPPORTED_SEQUENCES`], in manifest column order.
    pub sequences: Vec<String>,
    /// Centers in output order.
    pub centers: Vec<SyntheticCenterSpec>,
}

impl SyntheticSpec {
    /// Builds the cohort that `radstudy demo` runs on. Development center
    /// `A` has 60 patients (40 % positive, gain 1.0, noise SD 12), and
    /// external center `B` has 30 (30 % positive, gain 1.3, noise SD 20).
    /// Both have `T1W` and `T2FS` volumes of 64 × 64 × 24 voxels at
    /// 0.9 × 0.9 × 3.0 mm.
    pub fn demo_default() -> Self {
        SyntheticSpec {
            seed: 1729,
            dims: [64, 64, 24],
            spacing_mm: [0.9, 0.9, 3.0],
            sequences: vec!["T1W".to_string(), "T2FS".to_string()],
            centers: vec![
                SyntheticCenterSpec {
                    center_id: "A".to_string(),
                    n_patients: 60,
                    positive_fraction: 0.4,
                    gain: 1.0,
                    noise_sd: 12.0,
                },
                SyntheticCenterSpec {
                    center_id: "B".to_string(),
                    n_patients: 30,
                    positive_fraction: 0.3,
                    gain: 1.3,
                    noise_sd: 20.0,
                },
            ],
        }
    }
}

/// One generated center, as a worker would be configured to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticCenter {
    /// Center id from the spec.
    pub center_id: String,
    /// Directory `out_dir/<center_id>`, to which manifest paths are relative.
    pub data_root: PathBuf,
    /// Path of `manifest.csv` inside `data_root`.
    pub manifest: PathBuf,
    /// Number of patients written.
    pub n_patients: usize,
    /// Number of patients with label 1.
    pub n_positive: usize,
}

/// Error from [`generate`].
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The spec cannot be generated; the message names the field and value.
    #[error("invalid synthetic cohort spec: {0}")]
    InvalidSpec(String),
    /// A directory could not be created.
    #[error("failed to create directory {path}: {source}")]
    CreateDir {
        /// Directory that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A NIfTI file could not be written.
    #[error("failed to write NIfTI file {path}: {source}")]
    WriteNifti {
        /// File that failed.
        path: PathBuf,
        /// Underlying NIfTI or I/O error.
        source: nifti::NiftiError,
    },
    /// The manifest could not be written.
    #[error("failed to write manifest {path}: {source}")]
    WriteManifest {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
}

/// Generates the cohort described by `spec` under `out_dir`.
///
/// Writes `out_dir/<center>/<patient>/<sequence>_image.nii.gz` (int16,
/// `scl_slope` 1) and `<sequence>_mask.nii.gz` (uint8, 1 in the lesion) for
/// every patient and sequence, and `out_dir/<center>/manifest.csv` with the
/// header `patient_id,label,<seq>_image,<seq>_mask,...` and paths relative
/// to the center directory. Patient ids are `<center>-001`, `<center>-002`,
/// and so on, zero-padded to at least three digits. Existing files with the
/// same names are overwritten, and other files in `out_dir` are left alone.
/// Patients are generated on all available cores, and the output does not
/// depend on the number of threads.
///
/// # Errors
///
/// Returns [`SynthError::InvalidSpec`] if a field breaks the rules in its
/// docs, or if the volume is too small to hold the largest lesion two
/// voxels away from the border. Returns an I/O variant with the failing path
/// if a directory or file cannot be written.
pub fn generate(out_dir: &Path, spec: &SyntheticSpec) -> Result<Vec<SyntheticCenter>, SynthError> {
    let contrasts = validate_spec(spec)?;

    let mut jobs = Vec::new();
    let mut centers = Vec::new();
    let mut manifests = Vec::new();
    for (center_index, center) in spec.centers.iter().enumerate() {
        let data_root = out_dir.join(&center.center_id);
        create_dir(&data_root)?;

        let labels = assign_labels(spec.seed, center);
        let id_width = center.n_patients.to_string().len().max(3);
        let mut manifest = manifest_header(&spec.sequences);
        for (patient_index, &label) in labels.iter().enumerate() {
            let patient_id = format!("{}-{:0id_width$}", center.center_id, patient_index + 1);
            append_manifest_row(&mut manifest, &patient_id, label, &spec.sequences);
            jobs.push(PatientJob {
                center_index,
                patient_dir: data_root.join(&patient_id),
                patient_id,
                label,
            });
        }

        manifests.push(manifest);
        centers.push(SyntheticCenter {
            center_id: center.center_id.clone(),
            manifest: data_root.join("manifest.csv"),
            data_root,
            n_patients: center.n_patients,
            n_positive: labels.iter().filter(|&&label| label == 1).count(),
        });
    }

    run_jobs(spec, &contrasts, &jobs)?;

    // Manifests are written last, so a manifest never lists files that a
    // failed run did not write.
    for (center, manifest) in centers.iter().zip(manifests) {
        fs::write(&center.manifest, manifest).map_err(|source| SynthError::WriteManifest {
            path: center.manifest.clone(),
            source,
        })?;
    }

    for center in &centers {
        tracing::info!(
            center = %center.center_id,
            patients = center.n_patients,
            positives = center.n_positive,
            data_root = %center.data_root.display(),
            "generated synthetic center"
        );
    }
    Ok(centers)
}

/// One patient to synthesize and write.
struct PatientJob {
    center_index: usize,
    patient_id: String,
    patient_dir: PathBuf,
    label: u8,
}

/// Runs the patient jobs on up to `available_parallelism` threads. After a
/// failure the threads start no new jobs, and the error of the
/// lowest-numbered failed job is returned.
fn run_jobs(
    spec: &SyntheticSpec,
    contrasts: &[&'static Contrast],
    jobs: &[PatientJob],
) -> Result<(), SynthError> {
    let threads = std::thread::available_parallelism()
        .map(|count| count.get())
        .unwrap_or(1)
        .clamp(1, jobs.len().max(1));
    let next_job = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, SynthError)>> = Mutex::new(None);

    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next_job.fetch_add(1, Ordering::Relaxed);
                    if index >= jobs.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(error) = write_patient(spec, contrasts, &jobs[index]) {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        if slot.as_ref().is_none_or(|(first, _)| index < *first) {
                            *slot = Some((index, error));
                        }
                    }
                }
            });
        }
    });

    match first_error
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

/// Synthesizes one patient and writes its image and mask for every sequence.
fn write_patient(
    spec: &SyntheticSpec,
    contrasts: &[&'static Contrast],
    job: &PatientJob,
) -> Result<(), SynthError> {
    create_dir(&job.patient_dir)?;
    let center = &spec.centers[job.center_index];
    let volumes = synthesize_patient(spec, center, contrasts, &job.patient_id, job.label);
    let header = reference_header(spec);

    for (sequence, image) in spec.sequences.iter().zip(&volumes.images) {
        let image_path = job.patient_dir.join(format!("{sequence}_image.nii.gz"));
        write_image(&image_path, &header, image)?;
        let mask_path = job.patient_dir.join(format!("{sequence}_mask.nii.gz"));
        write_mask(&mask_path, &header, &volumes.mask)?;
    }
    Ok(())
}

/// In-memory volumes of one patient.
struct PatientVolumes {
    /// One image per sequence, in spec order.
    images: Vec<Array3<i16>>,
    /// Lesion mask shared by all sequences.
    mask: Array3<u8>,
}

fn synthesize_patient(
    spec: &SyntheticSpec,
    center: &SyntheticCenterSpec,
    contrasts: &[&'static Contrast],
    patient_id: &str,
    label: u8,
) -> PatientVolumes {
    let anatomy = Anatomy::generate(spec, &center.center_id, patient_id, label);
    let images = contrasts
        .iter()
        .map(|contrast| render_sequence(spec, center, patient_id, &anatomy, contrast))
        .collect();
    PatientVolumes {
        images,
        mask: anatomy.mask_array(),
    }
}

fn create_dir(path: &Path) -> Result<(), SynthError> {
    fs::create_dir_all(path).map_err(|source| SynthError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------
// Spec validation and labels
// ---------------------------------------------------------------------------

/// Checks the spec and returns the contrast of each sequence in order.
fn validate_spec(spec: &SyntheticSpec) -> Result<Vec<&'static Contrast>, SynthError> {
    let invalid = |message: String| Err(SynthError::InvalidSpec(message));

    for axis in 0..3 {
        let size = spec.dims[axis];
        let spacing = spec.spacing_mm[axis];
        if size == 0 || size > i16::MAX as usize {
            return invalid(format!(
                "dims[{axis}] = {size} must be between 1 and {}",
                i16::MAX
            ));
        }
        if !(spacing.is_finite() && spacing > 0.0) {
            return invalid(format!(
                "spacing_mm[{axis}] = {spacing} must be a positive number"
            ));
        }
        // The lesion center needs a non-empty range in which the bounding
        // sphere of the largest lesion stays BORDER_MARGIN_VOXELS inside.
        let extent_mm = (size - 1) as f64 * spacing;
        let required_mm = 2.0 * (max_bounding_radius_mm() + BORDER_MARGIN_VOXELS * spacing);
        if extent_mm < required_mm {
            return invalid(format!(
                "dims[{axis}] = {size} at spacing {spacing} mm spans {extent_mm:.1} mm, \
                 but a lesion needs at least {required_mm:.1} mm; increase dims[{axis}]"
            ));
        }
    }

    if spec.sequences.is_empty() {
        return invalid("sequences is empty; list at least one sequence".to_string());
    }
    let mut contrasts = Vec::with_capacity(spec.sequences.len());
    for (index, sequence) in spec.sequences.iter().enumerate() {
        let Some(contrast) = contrast_for(sequence) else {
            return invalid(format!(
                "sequence {sequence:?} is not supported; use one of {SUPPORTED_SEQUENCES:?}"
            ));
        };
        if spec.sequences[..index].contains(sequence) {
            return invalid(format!("sequence {sequence:?} is listed twice"));
        }
        contrasts.push(contrast);
    }

    if spec.centers.is_empty() {
        return invalid("centers is empty; list at least one center".to_string());
    }
    for (index, center) in spec.centers.iter().enumerate() {
        validate_center(center)?;
        if spec.centers[..index]
            .iter()
            .any(|other| other.center_id == center.center_id)
        {
            return invalid(format!("center id {:?} is listed twice", center.center_id));
        }
    }
    Ok(contrasts)
}

fn validate_center(center: &SyntheticCenterSpec) -> Result<(), SynthError> {
    let id = &center.center_id;
    let invalid = |message: String| Err(SynthError::InvalidSpec(message));

    let id_is_safe = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !id_is_safe {
        return invalid(format!(
            "center id {id:?} must be non-empty and contain only ASCII letters, digits, '_' and '-'"
        ));
    }
    if center.n_patients == 0 {
        return invalid(format!("center {id}: n_patients must be at least 1"));
    }
    let fraction = center.positive_fraction;
    if !(0.0..=1.0).contains(&fraction) {
        return invalid(format!(
            "center {id}: positive_fraction = {fraction} must be in [0, 1]"
        ));
    }
    if !(center.gain.is_finite() && center.gain > 0.0) {
        return invalid(format!(
            "center {id}: gain = {} must be a positive number",
            center.gain
        ));
    }
    if !(center.noise_sd.is_finite() && center.noise_sd >= 0.0) {
        return invalid(format!(
            "center {id}: noise_sd = {} must be a non-negative number",
            center.noise_sd
        ));
    }
    Ok(())
}

/// Returns one label per patient in patient order: exactly
/// `round(positive_fraction × n_patients)` ones, in a shuffled order drawn
/// from the seed and the center id.
fn assign_labels(seed: u64, center: &SyntheticCenterSpec) -> Vec<u8> {
    let n_positive = (center.positive_fraction * center.n_patients as f64).round() as usize;
    let mut labels: Vec<u8> = (0..center.n_patients)
        .map(|index| u8::from(index < n_positive))
        .collect();
    let mut rng = derive_rng(seed, &["labels", &center.center_id]);
    labels.shuffle(&mut rng);
    labels
}

/// Seeds a generator from a SHA-256 hash of `seed` and `parts`. Each part is
/// prefixed with its length so that different part lists never collide.
fn derive_rng(seed: u64, parts: &[&str]) -> Xoshiro256PlusPlus {
    let mut hasher = Sha256::new();
    hasher.update(b"radstudy.demo.synth.v1");
    hasher.update(seed.to_le_bytes());
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    Xoshiro256PlusPlus::from_seed(hasher.finalize().into())
}

fn manifest_header(sequences: &[String]) -> String {
    let mut header = String::from("patient_id,label");
    for sequence in sequences {
        let _ = write!(header, ",{sequence}_image,{sequence}_mask");
    }
    header.push('\n');
    header
}

fn append_manifest_row(manifest: &mut String, patient_id: &str, label: u8, sequences: &[String]) {
    let _ = write!(manifest, "{patient_id},{label}");
    for sequence in sequences {
        let _ = write!(
            manifest,
            ",{patient_id}/{sequence}_image.nii.gz,{patient_id}/{sequence}_mask.nii.gz"
        );
    }
    manifest.push('\n');
}

// ---------------------------------------------------------------------------
// Contrast and rendering
// ---------------------------------------------------------------------------

/// Noise-free intensities (a.u., before gain and bias) of one sequence.
#[derive(Debug)]
struct Contrast {
    name: &'static str,
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

fn contrast_for(name: &str) -> Option<&'static Contrast> {
    CONTRASTS.iter().find(|contrast| contrast.name == name)
}

/// Renders one sequence of a patient: contrast, bias field, gain and noise.
fn render_sequence(
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

// ---------------------------------------------------------------------------
// Patient anatomy (shared by all sequences)
// ---------------------------------------------------------------------------

/// Sequence-independent description of one patient, stored per voxel in C
/// order (z fastest) on the spec's grid.
struct Anatomy {
    dims: [usize; 3],
    label: u8,
    /// Fat fraction in [0, 1] of the background tissue.
    fat_fraction: Vec<f32>,
    /// Unit-SD smooth texture of the background tissue.
    tissue_texture: Vec<f32>,
    /// Unit-SD fine texture inside the lesion.
    lesion_texture: Vec<f32>,
    /// Lesion partial-volume weight in [0, 1]. The mask is `weight >= 0.5`.
    lesion_weight: Vec<f32>,
    /// Core weight in [0, 1] inside the lesion (0 in the rim).
    core_weight: Vec<f32>,
    /// Core texture strength, log-normal with a class-dependent median.
    heterogeneity: f32,
    /// Patient's relative lesion contrast, around 1.
    lesion_contrast_scale: f32,
    /// Patient's overall signal scale, around 1.
    patient_scale: f32,
}

impl Anatomy {
    fn generate(spec: &SyntheticSpec, center_id: &str, patient_id: &str, label: u8) -> Self {
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
    fn mask_array(&self) -> Array3<u8> {
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
fn max_bounding_radius_mm() -> f64 {
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

// ---------------------------------------------------------------------------
// Smooth random fields
// ---------------------------------------------------------------------------

/// Returns Gaussian white noise smoothed with an isotropic Gaussian kernel of
/// `sigma_mm`, rescaled to zero mean and unit SD, in C order on `dims`.
fn smooth_noise(
    rng: &mut Xoshiro256PlusPlus,
    dims: [usize; 3],
    spacing_mm: [f64; 3],
    sigma_mm: f64,
) -> Vec<f32> {
    let mut field: Vec<f32> = (0..dims[0] * dims[1] * dims[2])
        .map(|_| rng.sample(StandardNormal))
        .collect();
    for (axis, spacing) in spacing_mm.iter().enumerate() {
        blur_axis(&mut field, dims, axis, &gaussian_kernel(sigma_mm / spacing));
    }
    standardize(&mut field);
    field
}

/// Returns a normalized Gaussian kernel truncated at 2.5 sigma, or the
/// identity kernel when sigma is below a third of a voxel.
fn gaussian_kernel(sigma_voxels: f64) -> Vec<f32> {
    if sigma_voxels < 1.0 / 3.0 {
        return vec![1.0];
    }
    let radius = (2.5 * sigma_voxels).ceil() as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|offset| (-0.5 * (offset as f64 / sigma_voxels).powi(2)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .map(|weight| (weight / total) as f32)
        .collect()
}

/// Convolves every line of `field` along `axis` with `kernel`, replicating
/// the edge values.
fn blur_axis(field: &mut [f32], dims: [usize; 3], axis: usize, kernel: &[f32]) {
    if kernel.len() == 1 {
        return;
    }
    let length = dims[axis];
    let radius = kernel.len() / 2;
    // The field is viewed as [outer][length][inner] in C order, so the
    // `inner` voxels after the blurred axis are contiguous.
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();

    if inner == 1 {
        let mut padded = vec![0.0f32; length + 2 * radius];
        for line in field.chunks_exact_mut(length) {
            for (position, value) in padded.iter_mut().enumerate() {
                *value = line[position.saturating_sub(radius).min(length - 1)];
            }
            for (position, value) in line.iter_mut().enumerate() {
                let window = &padded[position..position + kernel.len()];
                *value = window.iter().zip(kernel).map(|(a, b)| a * b).sum();
            }
        }
        return;
    }

    // Weighted sums of whole contiguous rows, which the compiler vectorizes.
    let block = length * inner;
    let mut source = vec![0.0f32; block];
    for chunk in field.chunks_exact_mut(block).take(outer) {
        source.copy_from_slice(chunk);
        for position in 0..length {
            let target = &mut chunk[position * inner..(position + 1) * inner];
            target.fill(0.0);
            for (tap, &weight) in kernel.iter().enumerate() {
                let row = (position + tap).saturating_sub(radius).min(length - 1);
                let source_row = &source[row * inner..(row + 1) * inner];
                for (out, &value) in target.iter_mut().zip(source_row) {
                    *out += weight * value;
                }
            }
        }
    }
}

fn standardize(field: &mut [f32]) {
    let count = field.len() as f64;
    let mean = field.iter().map(|&value| value as f64).sum::<f64>() / count;
    let variance = field
        .iter()
        .map(|&value| (value as f64 - mean).powi(2))
        .sum::<f64>()
        / count;
    let sd = variance.sqrt().max(1e-12);
    for value in field.iter_mut() {
        *value = ((*value as f64 - mean) / sd) as f32;
    }
}

// ---------------------------------------------------------------------------
// NIfTI output
// ---------------------------------------------------------------------------

/// Builds the header geometry shared by images and masks. pixdim holds the
/// spacing in mm. The qform and sform are identical and place voxel
/// (i, j, k) at `origin + (i, j, k) × spacing`, with identity direction and
/// the volume centered on the world origin. Byte order is fixed to
/// little-endian so the files do not depend on the machine.
fn reference_header(spec: &SyntheticSpec) -> NiftiHeader {
    let [sx, sy, sz] = spec.spacing_mm.map(|value| value as f32);
    let origin = volume_origin_mm(spec).map(|value| value as f32);

    let text = b"radstudy synthetic demo cohort";
    let mut descrip = vec![0u8; 80];
    descrip[..text.len()].copy_from_slice(text);

    NiftiHeader {
        pixdim: [1.0, sx, sy, sz, 1.0, 1.0, 1.0, 1.0],
        xyzt_units: Unit::Mm as u8,
        descrip,
        qform_code: XForm::ScannerAnat as i16,
        sform_code: XForm::ScannerAnat as i16,
        quatern_b: 0.0,
        quatern_c: 0.0,
        quatern_d: 0.0,
        quatern_x: origin[0],
        quatern_y: origin[1],
        quatern_z: origin[2],
        srow_x: [sx, 0.0, 0.0, origin[0]],
        srow_y: [0.0, sy, 0.0, origin[1]],
        srow_z: [0.0, 0.0, sz, origin[2]],
        endianness: Endianness::Little,
        ..NiftiHeader::default()
    }
}

/// Returns the world position in mm of voxel (0, 0, 0).
fn volume_origin_mm(spec: &SyntheticSpec) -> [f64; 3] {
    let mut origin = [0.0; 3];
    for (axis, value) in origin.iter_mut().enumerate() {
        *value = -((spec.dims[axis] - 1) as f64) * spec.spacing_mm[axis] / 2.0;
    }
    origin
}

fn write_image(path: &Path, header: &NiftiHeader, image: &Array3<i16>) -> Result<(), SynthError> {
    WriterOptions::new(path)
        .reference_header(header)
        .compress(true)
        .write_nifti(image)
        .map_err(|source| SynthError::WriteNifti {
            path: path.to_path_buf(),
            source,
        })
}

fn write_mask(path: &Path, header: &NiftiHeader, mask: &Array3<u8>) -> Result<(), SynthError> {
    WriterOptions::new(path)
        .reference_header(header)
        .compress(true)
        .write_nifti(mask)
        .map_err(|source| SynthError::WriteNifti {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nifti::{InMemNiftiObject, IntoNdArray, NiftiObject, NiftiType, ReaderOptions};

    /// Default geometry and sequences with few patients, so tests stay fast.
    fn small_spec(seed: u64) -> SyntheticSpec {
        let mut spec = SyntheticSpec::demo_default();
        spec.seed = seed;
        spec.centers[0].n_patients = 5;
        spec.centers[1].n_patients = 4;
        spec.centers[1].positive_fraction = 0.25;
        spec
    }

    fn read_nifti(path: &Path) -> InMemNiftiObject {
        ReaderOptions::new()
            .read_file(path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
    }

    fn read_mask(path: &Path) -> Array3<u8> {
        read_nifti(path)
            .into_volume()
            .into_ndarray::<u8>()
            .expect("mask converts to u8")
            .into_dimensionality()
            .expect("mask is 3-D")
    }

    /// Returns (patient_id, label, relative paths) for each manifest row.
    fn read_manifest(path: &Path) -> (String, Vec<(String, u8, Vec<String>)>) {
        let text = fs::read_to_string(path).expect("manifest is readable");
        let mut lines = text.lines();
        let header = lines.next().expect("manifest has a header").to_string();
        let rows = lines
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let label = fields[1].parse().expect("label is 0 or 1");
                let paths = fields[2..].iter().map(|field| field.to_string()).collect();
                (fields[0].to_string(), label, paths)
            })
            .collect();
        (header, rows)
    }

    /// Lists every file under `root` with its bytes, sorted by path.
    fn read_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("directory is readable") {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let bytes = fs::read(&path).expect("file is readable");
                    let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                    files.push((relative, bytes));
                }
            }
        }
        files.sort();
        files
    }

    /// Mann–Whitney AUC of `scores` for label 1 against label 0, ties counted half.
    fn auc(scores: &[f64], labels: &[u8]) -> f64 {
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (score_pos, _) in scores.iter().zip(labels).filter(|(_, label)| **label == 1) {
            for (score_neg, _) in scores.iter().zip(labels).filter(|(_, label)| **label == 0) {
                pairs += 1.0;
                if score_pos > score_neg {
                    wins += 1.0;
                } else if score_pos == score_neg {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    /// Returns the ROI standard deviation and 90th percentile (nearest rank).
    fn roi_sd_and_p90(image: &Array3<i16>, mask: &Array3<u8>) -> (f64, f64) {
        let mut values: Vec<f64> = image
            .iter()
            .zip(mask)
            .filter(|(_, label)| **label == 1)
            .map(|(&value, _)| f64::from(value))
            .collect();
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let variance = values
            .iter()
            .map(|value| (value - mean).powi(2))
            .sum::<f64>()
            / count;
        values.sort_by(f64::total_cmp);
        let rank = ((0.9 * count).ceil() as usize).clamp(1, values.len());
        (variance.sqrt(), values[rank - 1])
    }

    #[test]
    fn manifest_has_header_and_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = small_spec(7);
        let centers = generate(dir.path(), &spec).expect("generate");

        assert_eq!(centers.len(), 2);
        for (center, center_spec) in centers.iter().zip(&spec.centers) {
            assert_eq!(center.center_id, center_spec.center_id);
            assert_eq!(center.data_root, dir.path().join(&center_spec.center_id));
            assert_eq!(center.manifest, center.data_root.join("manifest.csv"));
            assert_eq!(center.n_patients, center_spec.n_patients);

            let (header, rows) = read_manifest(&center.manifest);
            assert_eq!(
                header,
                "patient_id,label,T1W_image,T1W_mask,T2FS_image,T2FS_mask"
            );
            assert_eq!(rows.len(), center_spec.n_patients);
            for (index, (patient_id, _, paths)) in rows.iter().enumerate() {
                let expected_id = format!("{}-{:03}", center_spec.center_id, index + 1);
                assert_eq!(patient_id, &expected_id);
                assert_eq!(
                    paths,
                    &vec![
                        format!("{expected_id}/T1W_image.nii.gz"),
                        format!("{expected_id}/T1W_mask.nii.gz"),
                        format!("{expected_id}/T2FS_image.nii.gz"),
                        format!("{expected_id}/T2FS_mask.nii.gz"),
                    ]
                );
            }
        }
    }

    #[test]
    fn manifest_paths_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let centers = generate(dir.path(), &small_spec(7)).expect("generate");

        for center in &centers {
            let (_, rows) = read_manifest(&center.manifest);
            for (_, _, paths) in rows {
                for path in paths {
                    let full = center.data_root.join(&path);
                    assert!(full.is_file(), "{} is missing", full.display());
                }
            }
        }
    }

    #[test]
    fn positive_count_matches_fraction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = small_spec(7);
        let centers = generate(dir.path(), &spec).expect("generate");

        // round(0.4 × 5) = 2 and round(0.25 × 4) = 1.
        for (center, expected) in centers.iter().zip([2, 1]) {
            assert_eq!(center.n_positive, expected, "center {}", center.center_id);
            let (_, rows) = read_manifest(&center.manifest);
            let positives = rows.iter().filter(|(_, label, _)| *label == 1).count();
            assert_eq!(positives, expected, "manifest of {}", center.center_id);
        }

        // Rounding cases, including a half that rounds away from zero.
        let cases = [
            (60, 0.4, 24),
            (30, 0.3, 9),
            (5, 0.5, 3),
            (7, 0.0, 0),
            (7, 1.0, 7),
        ];
        for (n_patients, positive_fraction, expected) in cases {
            let center = SyntheticCenterSpec {
                n_patients,
                positive_fraction,
                ..spec.centers[0].clone()
            };
            let labels = assign_labels(spec.seed, &center);
            assert_eq!(labels.len(), n_patients);
            let positives = labels.iter().filter(|&&label| label == 1).count();
            assert_eq!(
                positives, expected,
                "n = {n_patients}, fraction = {positive_fraction}"
            );
        }
    }

    #[test]
    fn labels_are_shuffled() {
        let center = SyntheticSpec::demo_default().centers[0].clone();
        let labels = assign_labels(1729, &center);
        let sorted_first: Vec<u8> = (0..60).map(|index| u8::from(index < 24)).collect();
        assert_ne!(labels, sorted_first);
        assert_ne!(labels, assign_labels(1730, &center));
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let first = tempfile::tempdir().expect("tempdir");
        let second = tempfile::tempdir().expect("tempdir");
        generate(first.path(), &small_spec(11)).expect("first run");
        generate(second.path(), &small_spec(11)).expect("second run");

        let first_files = read_tree(first.path());
        let second_files = read_tree(second.path());
        // 9 patients × 2 sequences × (image + mask) + 2 manifests.
        assert_eq!(first_files.len(), 38);
        assert_eq!(first_files.len(), second_files.len());
        for ((first_path, first_bytes), (second_path, second_bytes)) in
            first_files.iter().zip(&second_files)
        {
            assert_eq!(first_path, second_path);
            assert!(
                first_bytes == second_bytes,
                "{} differs",
                first_path.display()
            );
        }
    }

    #[test]
    fn different_seed_changes_images() {
        let first = tempfile::tempdir().expect("tempdir");
        let second = tempfile::tempdir().expect("tempdir");
        generate(first.path(), &small_spec(11)).expect("first run");
        generate(second.path(), &small_spec(12)).expect("second run");

        let first_files = read_tree(first.path());
        let second_files = read_tree(second.path());
        assert_eq!(first_files.len(), second_files.len());
        for ((path, first_bytes), (_, second_bytes)) in first_files.iter().zip(&second_files) {
            if path.to_string_lossy().ends_with("_image.nii.gz") {
                assert!(
                    first_bytes != second_bytes,
                    "{} is unchanged",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn mask_nonempty_and_off_border() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = small_spec(3);
        let centers = generate(dir.path(), &spec).expect("generate");
        let [nx, ny, nz] = spec.dims;

        for center in &centers {
            let (_, rows) = read_manifest(&center.manifest);
            for (patient_id, _, paths) in rows {
                let mask = read_mask(&center.data_root.join(&paths[1]));
                assert_eq!(mask.dim(), (nx, ny, nz), "{patient_id}");

                let lesion_voxels = mask.iter().filter(|&&label| label == 1).count();
                assert!(lesion_voxels > 100, "{patient_id}: {lesion_voxels} voxels");
                assert!(mask.iter().all(|&label| label <= 1), "{patient_id}");

                for ((i, j, k), &label) in mask.indexed_iter() {
                    let on_border =
                        i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1;
                    assert!(
                        !(on_border && label == 1),
                        "{patient_id}: lesion touches the border at ({i}, {j}, {k})"
                    );
                }

                let other_mask = read_mask(&center.data_root.join(&paths[3]));
                assert_eq!(mask, other_mask, "{patient_id}: sequences share the mask");
            }
        }
    }

    #[test]
    fn header_geometry_matches_spec() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = small_spec(5);
        spec.dims = [48, 56, 22];
        spec.spacing_mm = [1.0, 0.8, 2.5];
        spec.centers.truncate(1);
        spec.centers[0].n_patients = 1;
        generate(dir.path(), &spec).expect("generate");

        let patient_dir = dir.path().join("A").join("A-001");
        let cases = [
            ("T1W_image.nii.gz", NiftiType::Int16),
            ("T1W_mask.nii.gz", NiftiType::Uint8),
        ];
        for (file, datatype) in cases {
            let object = read_nifti(&patient_dir.join(file));
            let header = object.header();
            assert_eq!(header.data_type().expect("datatype"), datatype, "{file}");
            assert_eq!(header.dim().expect("dim"), &[48, 56, 22], "{file}");
            assert_eq!(&header.pixdim[1..4], &[1.0, 0.8, 2.5], "{file}");
            assert_eq!(header.xyzt_units, Unit::Mm as u8, "{file}");
            assert_eq!(header.scl_slope, 1.0, "{file}");
            assert_eq!(header.scl_inter, 0.0, "{file}");

            // Voxel (0, 0, 0) sits at -(n - 1) × spacing / 2 on each axis.
            let origin = [-23.5f32, -22.0, -26.25];
            assert_eq!(header.sform_code, XForm::ScannerAnat as i16, "{file}");
            assert_eq!(header.srow_x, [1.0, 0.0, 0.0, origin[0]], "{file}");
            assert_eq!(header.srow_y, [0.0, 0.8, 0.0, origin[1]], "{file}");
            assert_eq!(header.srow_z, [0.0, 0.0, 2.5, origin[2]], "{file}");
            assert_eq!(header.qform_code, XForm::ScannerAnat as i16, "{file}");
            assert_eq!(header.pixdim[0], 1.0, "{file}: qfac");
            assert_eq!(
                [header.quatern_b, header.quatern_c, header.quatern_d],
                [0.0, 0.0, 0.0],
                "{file}"
            );
            assert_eq!(
                [header.quatern_x, header.quatern_y, header.quatern_z],
                origin,
                "{file}"
            );
        }
    }

    #[test]
    fn sequence_contrast_direction() {
        let spec = small_spec(9);
        let contrasts = validate_spec(&spec).expect("valid spec");
        let center = &spec.centers[0];

        for (patient, label) in [("A-001", 0), ("A-002", 1)] {
            let volumes = synthesize_patient(&spec, center, &contrasts, patient, label);
            let mean_inside_and_outside = |image: &Array3<i16>| {
                let (mut inside, mut outside) = ((0.0, 0.0), (0.0, 0.0));
                for (&value, &lesion) in image.iter().zip(&volumes.mask) {
                    let sums = if lesion == 1 {
                        &mut inside
                    } else {
                        &mut outside
                    };
                    sums.0 += f64::from(value);
                    sums.1 += 1.0;
                }
                (inside.0 / inside.1, outside.0 / outside.1)
            };

            let (t1_lesion, t1_background) = mean_inside_and_outside(&volumes.images[0]);
            assert!(
                t1_lesion < t1_background - 50.0,
                "{patient} T1W: lesion {t1_lesion:.0}, background {t1_background:.0}"
            );
            let (t2_lesion, t2_background) = mean_inside_and_outside(&volumes.images[1]);
            assert!(
                t2_lesion > t2_background + 100.0,
                "{patient} T2FS: lesion {t2_lesion:.0}, background {t2_background:.0}"
            );
        }
    }

    #[test]
    fn roi_features_separate_classes() {
        let spec = SyntheticSpec::demo_default();
        let contrasts = validate_spec(&spec).expect("valid spec");

        for center in &spec.centers {
            let labels = assign_labels(spec.seed, center);
            let mut features = vec![Vec::new(); 2 * contrasts.len()];
            for (index, &label) in labels.iter().enumerate() {
                let patient_id = format!("{}-{:03}", center.center_id, index + 1);
                let volumes = synthesize_patient(&spec, center, &contrasts, &patient_id, label);
                for (sequence, image) in volumes.images.iter().enumerate() {
                    let (sd, p90) = roi_sd_and_p90(image, &volumes.mask);
                    features[2 * sequence].push(sd);
                    features[2 * sequence + 1].push(p90);
                }
            }

            for (sequence, contrast) in contrasts.iter().enumerate() {
                let sd_auc = auc(&features[2 * sequence], &labels);
                let p90_auc = auc(&features[2 * sequence + 1], &labels);
                eprintln!(
                    "center {} {}: AUC of ROI SD {sd_auc:.3}, of ROI p90 {p90_auc:.3}",
                    center.center_id, contrast.name
                );
                // Realistic, not perfect: clearly above chance, clearly below 1.
                assert!((0.65..=0.9).contains(&sd_auc), "ROI SD AUC {sd_auc:.3}");
            }
        }
    }

    #[test]
    fn invalid_spec_rejected() {
        type SpecEdit = fn(&mut SyntheticSpec);
        let cases: Vec<(&str, SpecEdit)> = vec![
            ("unknown sequence", |spec| spec.sequences[0] = "DWI".into()),
            ("duplicate sequence", |spec| {
                spec.sequences[1] = "T1W".into()
            }),
            ("no sequences", |spec| spec.sequences.clear()),
            ("no centers", |spec| spec.centers.clear()),
            ("duplicate center", |spec| {
                spec.centers[1].center_id = "A".into()
            }),
            ("center id with slash", |spec| {
                spec.centers[0].center_id = "A/B".into()
            }),
            ("empty center id", |spec| spec.centers[0].center_id.clear()),
            ("zero patients", |spec| spec.centers[0].n_patients = 0),
            ("fraction above 1", |spec| {
                spec.centers[0].positive_fraction = 1.5
            }),
            ("NaN fraction", |spec| {
                spec.centers[0].positive_fraction = f64::NAN
            }),
            ("zero gain", |spec| spec.centers[0].gain = 0.0),
            ("negative noise", |spec| spec.centers[0].noise_sd = -1.0),
            ("zero spacing", |spec| spec.spacing_mm[2] = 0.0),
            ("too few slices", |spec| spec.dims[2] = 12),
        ];

        for (case, mutate) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut spec = small_spec(1);
            mutate(&mut spec);
            let result = generate(dir.path(), &spec);
            assert!(
                matches!(result, Err(SynthError::InvalidSpec(_))),
                "{case}: {result:?}"
            );
            let written = fs::read_dir(dir.path()).expect("tempdir").count();
            assert_eq!(written, 0, "{case}: files written before validation");
        }
    }

    #[test]
    fn minimum_dims_boundary() {
        // The smallest sizes named in the `dims` docs for 0.9 and 3 mm spacing.
        let mut spec = small_spec(1);
        spec.dims = [46, 46, 18];
        assert!(validate_spec(&spec).is_ok(), "46 × 46 × 18 is large enough");

        for dims in [[45, 46, 18], [46, 45, 18], [46, 46, 17]] {
            spec.dims = dims;
            assert!(
                matches!(validate_spec(&spec), Err(SynthError::InvalidSpec(_))),
                "{dims:?} is too small"
            );
        }

        let dir = tempfile::tempdir().expect("tempdir");
        spec.dims = [46, 46, 18];
        spec.centers[0].n_patients = 3;
        spec.centers.truncate(1);
        let centers = generate(dir.path(), &spec).expect("generate at the minimum size");
        let (_, rows) = read_manifest(&centers[0].manifest);
        for (patient_id, _, paths) in rows {
            let mask = read_mask(&centers[0].data_root.join(&paths[1]));
            let on_border = mask.indexed_iter().any(|((i, j, k), &label)| {
                label == 1 && (i == 0 || j == 0 || k == 0 || i == 45 || j == 45 || k == 17)
            });
            assert!(!on_border, "{patient_id}: lesion touches the border");
        }
    }

    #[test]
    fn unwritable_output_reports_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("not-a-directory");
        fs::write(&blocker, b"").expect("write blocker file");

        match generate(&blocker, &small_spec(1)) {
            Err(SynthError::CreateDir { path, .. }) => assert_eq!(path, blocker.join("A")),
            other => panic!("expected CreateDir error, got {other:?}"),
        }
    }
}
