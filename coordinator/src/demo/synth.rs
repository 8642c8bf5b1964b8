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
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use sha2::{Digest, Sha256};

mod anatomy;
mod nifti_output;
mod random_field;
mod render;

use anatomy::{Anatomy, BORDER_MARGIN_VOXELS, max_bounding_radius_mm};
use nifti_output::{reference_header, write_image, write_mask};
use render::{Contrast, contrast_for, render_sequence};

/// Sequence names that [`generate`] accepts, each with its own contrast.
pub const SUPPORTED_SEQUENCES: [&str; 3] = ["T1W", "T2W", "T2FS"];

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

#[cfg(test)]
mod tests;
