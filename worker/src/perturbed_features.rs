//! Features of the perturbed copies of one patient and sequence, for the
//! reproducibility (ICC) design of a round that runs with `perturbation`.
//!
//! After the normal extraction of a patient and sequence, the worker makes
//! the plan's k perturbed copies of the same image and ROI
//! ([`crate::perturb`]) and computes the same features on each copy
//! ([`crate::extract::compute_features`]). The copies stay in the worker's
//! memory; only their ICC sums leave it. In a round with habitat regions,
//! each copy also reruns the habitat chain with the frozen population
//! model ([`habitat_copy_features`]), so the ICC includes the variability
//! of the habitat assignment. In `joint` habitat mode a copy perturbs every
//! sequence of the patient's joint space together, also when they lie on
//! different grids ([`joint_habitat_copy_features`] states the rule).

mod joint;

pub use joint::{JointSpaceInputs, joint_habitat_copy_features};

use radstudy_proto::v1::PerturbationSettings;
use sha2::{Digest, Sha256};

use crate::error::Exclusion;
use crate::extract::{LoadedSequence, compute_features};
use crate::feature_request::FeatureRequest;
use crate::habitat::assign::ValidHabitatModel;
use crate::habitat::geometric::ValidGeometricSettings;
use crate::habitat::pipeline::{
    ChainSettings, SequenceInput, SpaceSupervoxels, copy_space_name, sequence_supervoxels,
};
use crate::habitat::regions::RegionMasks;
use crate::image::{PixelType, Volume};
use crate::mask::Roi;
use crate::perturb::{PerturbError, PerturbationPlan, Perturber, PlanError, ValidPlan};

/// Largest number of copies per patient that this worker accepts. Each copy
/// costs about one feature extraction, so 100 copies already make a round
/// about 100 times longer than without perturbation.
///
/// NOTE: this limit is the worker's own, not the contract's. A request for
/// more copies is rejected as an invalid `perturbation.repeats`.
pub const MAX_REPEATS: u32 = 100;

/// Domain tag of the per-patient seed hash, so that the seed can never
/// equal another hash of the same bytes. The version changes only when the
/// derivation changes.
const SEED_DOMAIN: &[u8] = b"radstudy-perturbation-seed-v1\0";

/// The perturbation design of a round: the validated plan and the study
/// seed.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundPerturbation {
    /// Copies per patient and the ranges of their random draws.
    pub plan: ValidPlan,
    /// Study seed, from which each patient's seed is derived by
    /// [`patient_seed`].
    pub study_seed: u64,
}

/// An invalid `PerturbationSettings` message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PerturbationSettingsError {
    /// A setting is out of the plan's range.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// More copies than [`MAX_REPEATS`].
    #[error(
        "repeats = {repeats} is too large; this worker makes at most {MAX_REPEATS} copies per patient"
    )]
    TooManyRepeats {
        /// The requested value.
        repeats: u32,
    },
}

impl PerturbationSettingsError {
    /// Returns the request field, in dotted form, that the error concerns.
    pub fn field(&self) -> &'static str {
        match self {
            PerturbationSettingsError::Plan(PlanError::TooFewRepeats { .. })
            | PerturbationSettingsError::TooManyRepeats { .. } => "perturbation.repeats",
            PerturbationSettingsError::Plan(PlanError::InvalidMaxAngle { .. }) => {
                "perturbation.max_angle_deg"
            }
            PerturbationSettingsError::Plan(PlanError::InvalidMaxVolumeChange { .. }) => {
                "perturbation.max_volume_change_mm"
            }
        }
    }
}

impl RoundPerturbation {
    /// Validates the contract's settings message.
    ///
    /// # Errors
    ///
    /// [`PerturbationSettingsError`] naming the first invalid setting.
    pub fn from_proto(settings: &PerturbationSettings) -> Result<Self, PerturbationSettingsError> {
        let plan = PerturbationPlan {
            repeats: settings.repeats,
            max_angle_deg: settings.max_angle_deg,
            max_volume_change_mm: settings.max_volume_change_mm,
            noise: settings.noise,
        }
        .validate()?;
        if plan.repeats() > MAX_REPEATS {
            return Err(PerturbationSettingsError::TooManyRepeats {
                repeats: plan.repeats(),
            });
        }
        Ok(RoundPerturbation {
            plan,
            study_seed: settings.seed,
        })
    }
}

/// Derives the seed of one patient's copies of one sequence from the study
/// seed.
///
/// The seed is the first 8 bytes, read as a little-endian u64, of
///
/// ```text
/// SHA-256( "radstudy-perturbation-seed-v1\0"
///          ‖ study_seed as 8 bytes little-endian
///          ‖ byte length of sequence as 8 bytes little-endian ‖ sequence (UTF-8)
///          ‖ byte length of pseudonym as 8 bytes little-endian ‖ pseudonym (UTF-8) )
/// ```
///
/// The length prefixes keep ("ab", "c") and ("a", "bc") apart. Copy j of the
/// patient then draws from [`crate::perturb::repeat_rng`]`(seed, j)`, so the
/// copies depend only on the study seed, the sequence, the pseudonym and the
/// image, never on the worker's thread count or the order of patients.
pub fn patient_seed(study_seed: u64, sequence: &str, pseudonym: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(SEED_DOMAIN);
    hasher.update(study_seed.to_le_bytes());
    hasher.update((sequence.len() as u64).to_le_bytes());
    hasher.update(sequence.as_bytes());
    hasher.update((pseudonym.len() as u64).to_le_bytes());
    hasher.update(pseudonym.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Failure of a patient's perturbed copies of one sequence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CopyFailure {
    /// The perturbation itself failed, for the patient or for one copy.
    #[error("perturbation failed: {0}")]
    Perturb(#[from] PerturbError),
    /// A copy's features could not be computed or are not finite.
    #[error("repeat {repeat}: {} ({})", exclusion.reason, exclusion.field)]
    Features {
        /// Index of the copy, from 0.
        repeat: u32,
        /// The reason, as for an original image.
        exclusion: Exclusion,
    },
    /// The habitat chain failed on a copy, or a region of the copy is
    /// below the minimum size.
    #[error("repeat {repeat}: {reason}")]
    Habitat {
        /// Index of the copy, from 0.
        repeat: u32,
        /// What failed.
        reason: String,
    },
}

/// Makes the k perturbed copies of `loaded` and computes `features` on
/// each, with the pixel type of `loaded`. Returns k rows in repeat order,
/// each with one finite value per feature name.
///
/// # Errors
///
/// The first [`CopyFailure`]. One failed copy makes all copies of this
/// patient and sequence unusable for the ICC, so the rest are not computed.
pub fn copy_features(
    sequence: &str,
    pseudonym: &str,
    loaded: &LoadedSequence,
    perturbation: &RoundPerturbation,
    features: &FeatureRequest,
) -> Result<Vec<Vec<f64>>, CopyFailure> {
    let perturber = Perturber::new(&loaded.image, &loaded.roi, &perturbation.plan)?;
    let seed = patient_seed(perturbation.study_seed, sequence, pseudonym);
    (0..perturbation.plan.repeats())
        .map(|repeat| {
            let (image, roi) = perturber.copy(seed, repeat)?;
            compute_features(sequence, &image, loaded.pixel_type, &roi, features)
                .map_err(|exclusion| CopyFailure::Features { repeat, exclusion })
        })
        .collect()
}

/// The frozen habitat chain that each perturbed copy reruns: the
/// supervoxel settings of the habitat round, the population model of the
/// sequence's space, and the region rules.
#[derive(Debug, Clone)]
pub struct HabitatCopyChain<'a> {
    /// Entropy, supervoxel settings and study seed of the supervoxel round.
    pub chain: &'a ChainSettings,
    /// The model of the sequence's own space.
    pub model: &'a ValidHabitatModel,
    /// The core/rim split, when the round built one.
    pub geometric: Option<&'a ValidGeometricSettings>,
    /// Regions with fewer voxels fail for that copy.
    pub min_region_voxels: usize,
}

/// Per region, the copies' features, or why they failed.
pub type RegionCopies = Vec<(String, Result<Vec<Vec<f64>>, CopyFailure>)>;

/// Makes the k perturbed copies of `loaded` and, on each, reruns the
/// habitat chain with the frozen model: entropy map, supervoxels (seed
/// space `"<sequence>#copy<p>"`), assignment to the model, then the
/// regions and their features. `whole`, `core` and `rim` come from the
/// perturbed mask alone. Returns, per requested region in order, k rows in
/// repeat order or the first failure of that region.
pub fn habitat_copy_features(
    sequence: &str,
    pseudonym: &str,
    loaded: &LoadedSequence,
    perturbation: &RoundPerturbation,
    features: &FeatureRequest,
    habitat: &HabitatCopyChain<'_>,
    regions: &[String],
) -> RegionCopies {
    let perturber = match Perturber::new(&loaded.image, &loaded.roi, &perturbation.plan) {
        Ok(perturber) => perturber,
        Err(error) => return fail_all(regions, CopyFailure::Perturb(error)),
    };
    let seed = patient_seed(perturbation.study_seed, sequence, pseudonym);
    let make_copy = |repeat: u32| -> Result<(Volume, RegionMasks), CopyFailure> {
        let (image, roi) = perturber.copy(seed, repeat)?;
        let masks = copy_regions(sequence, pseudonym, repeat, &image, &roi, habitat)
            .map_err(|reason| CopyFailure::Habitat { repeat, reason })?;
        Ok((image, masks))
    };
    region_copy_features(
        sequence,
        loaded.pixel_type,
        perturbation.plan.repeats(),
        features,
        habitat,
        regions,
        make_copy,
    )
}

/// Returns `failure` for every region.
fn fail_all(regions: &[String], failure: CopyFailure) -> RegionCopies {
    regions
        .iter()
        .map(|region| (region.clone(), Err(failure.clone())))
        .collect()
}

/// Computes each region's features on copies 0..repeats, where
/// `make_copy(p)` returns copy p's perturbed image of `sequence` and its
/// regions. A failed copy fails every region; a region below the minimum
/// size or whose features fail fails that region only. `pixel_type` is the
/// original image's, which the copies keep.
fn region_copy_features(
    sequence: &str,
    pixel_type: PixelType,
    repeats: u32,
    features: &FeatureRequest,
    habitat: &HabitatCopyChain<'_>,
    regions: &[String],
    mut make_copy: impl FnMut(u32) -> Result<(Volume, RegionMasks), CopyFailure>,
) -> RegionCopies {
    let mut results: Vec<Result<Vec<Vec<f64>>, CopyFailure>> =
        regions.iter().map(|_| Ok(Vec::new())).collect();
    for repeat in 0..repeats {
        let (image, masks) = match make_copy(repeat) {
            Ok(copy) => copy,
            Err(failure) => return fail_all(regions, failure),
        };
        for (region, result) in regions.iter().zip(results.iter_mut()) {
            let Ok(rows) = result else { continue };
            let values = match masks.roi(region) {
                None => Err(CopyFailure::Habitat {
                    repeat,
                    reason: format!(
                        "region {region} is not a region of {sequence}'s habitat model"
                    ),
                }),
                Some(region_roi) if region_roi.voxel_count < habitat.min_region_voxels => {
                    Err(CopyFailure::Habitat {
                        repeat,
                        reason: format!(
                            "region {region} has {} voxels, fewer than min_region_voxels = {}",
                            region_roi.voxel_count, habitat.min_region_voxels
                        ),
                    })
                }
                Some(region_roi) => {
                    compute_features(sequence, &image, pixel_type, &region_roi, features)
                        .map_err(|exclusion| CopyFailure::Features { repeat, exclusion })
                }
            };
            match values {
                Ok(values) => rows.push(values),
                Err(failure) => *result = Err(failure),
            }
        }
    }
    regions.iter().cloned().zip(results).collect()
}

/// Assigns a copy's supervoxels to the frozen model and returns the
/// habitat index of each voxel of the space's reference lesion.
fn reference_habitats(
    space: &SpaceSupervoxels,
    habitat: &HabitatCopyChain<'_>,
) -> Result<Vec<u16>, String> {
    let supervoxel_habitats = habitat
        .model
        .assign(space.descriptors.view())
        .map_err(|error| {
            format!("assigning the supervoxels to the habitat model failed: {error}")
        })?;
    Ok(space
        .labels
        .iter()
        .map(|&label| supervoxel_habitats[label as usize] as u16)
        .collect())
}

/// Assigns a copy's supervoxels to the frozen model and builds the regions
/// on the space's reference lesion.
fn masks_of_space(
    space: &SpaceSupervoxels,
    habitat: &HabitatCopyChain<'_>,
) -> Result<RegionMasks, String> {
    RegionMasks::new(
        &space.sequences[0].maps,
        reference_habitats(space, habitat)?,
        habitat.model.names.clone(),
        habitat.geometric,
    )
    .map_err(|error| error.to_string())
}

/// Reruns the habitat chain on one perturbed copy and returns its regions.
fn copy_regions(
    sequence: &str,
    pseudonym: &str,
    repeat: u32,
    image: &Volume,
    roi: &Roi,
    habitat: &HabitatCopyChain<'_>,
) -> Result<RegionMasks, String> {
    let input = SequenceInput {
        sequence,
        image,
        roi,
    };
    let seed_space = copy_space_name(sequence, repeat);
    let space = sequence_supervoxels(input, pseudonym, &seed_space, habitat.chain)
        .map_err(|error| error.to_string())?;
    masks_of_space(&space, habitat)
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;

    use super::*;
    use crate::features::{ExtractionSettings, FeatureClass};
    use crate::image::{Geometry, Volume};
    use crate::mask::Roi;

    fn settings() -> FeatureRequest {
        FeatureRequest::from_settings(ExtractionSettings {
            classes: vec![FeatureClass::Shape, FeatureClass::FirstOrder],
            bin_width: 10.0,
            label: 1,
        })
    }

    fn perturbation(repeats: u32, seed: u64) -> RoundPerturbation {
        RoundPerturbation::from_proto(&PerturbationSettings {
            repeats,
            max_angle_deg: 15.0,
            max_volume_change_mm: 1.5,
            noise: true,
            seed,
        })
        .expect("valid settings")
    }

    /// Builds a 40 × 40 × 12 volume of 1 × 1 × 2 mm voxels (a smooth blob
    /// plus a deterministic texture) and a cylindrical ROI of radius 6 mm
    /// over slices 4 to 7.
    fn phantom() -> LoadedSequence {
        let (ni, nj, nk) = (40, 40, 12);
        let data = Array3::from_shape_fn((ni, nj, nk), |(i, j, k)| {
            let (x, y) = (i as f64 - 20.0, j as f64 - 19.0);
            150.0 * (-(x * x + y * y) / 80.0).exp() + 7.0 * ((i * 5 + j * 11 + k * 3) % 13) as f64
        });
        let mask = Array3::from_shape_fn((ni, nj, nk), |(i, j, k)| {
            let (x, y) = (i as f64 - 20.0, j as f64 - 19.0);
            (4..8).contains(&k) && x * x + y * y <= 36.0
        });
        let voxel_count = mask.iter().filter(|&&inside| inside).count();
        LoadedSequence {
            image: Volume {
                data,
                geometry: Geometry {
                    dims: [ni, nj, nk],
                    spacing: [1.0, 1.0, 2.0],
                    origin: [0.0; 3],
                    direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                },
                stored_as_integer: false,
            },
            pixel_type: PixelType::Float64,
            roi: Roi { mask, voxel_count },
        }
    }

    #[test]
    fn patient_seed_matches_python_hashlib() {
        // Expected values from Python 3's hashlib and struct:
        //   m = b"radstudy-perturbation-seed-v1\0" + pack("<Q", seed)
        //       + pack("<Q", len(seq)) + seq + pack("<Q", len(ps)) + ps
        //   unpack("<Q", sha256(m).digest()[:8])[0]
        assert_eq!(
            patient_seed(2024, "MR_T1", "A-0123456789abcdef"),
            196130064224565898
        );
        assert_eq!(
            patient_seed(0, "PET", "B-ffffffffffffffff"),
            15582996174509650408
        );
    }

    #[test]
    fn patient_seed_separates_each_input() {
        let base = patient_seed(7, "PET", "A-1");
        assert_ne!(base, patient_seed(8, "PET", "A-1"));
        assert_ne!(base, patient_seed(7, "MR_T1", "A-1"));
        assert_ne!(base, patient_seed(7, "PET", "A-2"));
        // Without length prefixes both would hash "PETA-1".
        assert_ne!(patient_seed(7, "PETA", "-1"), patient_seed(7, "PET", "A-1"));
    }

    #[test]
    fn perturbation_settings_errors_name_field() {
        let valid = PerturbationSettings {
            repeats: 3,
            max_angle_deg: 10.0,
            max_volume_change_mm: 1.0,
            noise: true,
            seed: 1,
        };
        let cases = [
            (
                PerturbationSettings {
                    repeats: 1,
                    ..valid
                },
                "perturbation.repeats",
            ),
            (
                PerturbationSettings {
                    repeats: MAX_REPEATS + 1,
                    ..valid
                },
                "perturbation.repeats",
            ),
            (
                PerturbationSettings {
                    max_angle_deg: 190.0,
                    ..valid
                },
                "perturbation.max_angle_deg",
            ),
            (
                PerturbationSettings {
                    max_volume_change_mm: -1.0,
                    ..valid
                },
                "perturbation.max_volume_change_mm",
            ),
        ];
        for (settings, field) in cases {
            let error = RoundPerturbation::from_proto(&settings).unwrap_err();
            assert_eq!(error.field(), field, "{error}");
        }
        let round = RoundPerturbation::from_proto(&valid).expect("valid settings");
        assert_eq!(round.plan.repeats(), 3);
        assert_eq!(round.study_seed, 1);
    }

    #[test]
    fn copy_features_phantom_are_finite_and_reproducible() {
        let loaded = phantom();
        let settings = settings();
        let original = compute_features(
            "MR_T1",
            &loaded.image,
            loaded.pixel_type,
            &loaded.roi,
            &settings,
        )
        .expect("phantom extracts");
        let copies = copy_features("MR_T1", "A-1", &loaded, &perturbation(3, 11), &settings)
            .expect("phantom perturbs");

        assert_eq!(copies.len(), 3);
        for (repeat, values) in copies.iter().enumerate() {
            assert_eq!(values.len(), settings.feature_names().len());
            assert!(values.iter().all(|v| v.is_finite()), "repeat {repeat}");
            // Noise at the image's level changes every intensity, so the
            // first-order features of a copy differ from the original's.
            assert_ne!(values, &original, "repeat {repeat}");
        }
        assert_ne!(copies[0], copies[1]);

        let again = copy_features("MR_T1", "A-1", &loaded, &perturbation(3, 11), &settings)
            .expect("phantom perturbs");
        assert_eq!(again, copies, "same seed, sequence and pseudonym");
        let other = copy_features("MR_T1", "A-2", &loaded, &perturbation(3, 11), &settings)
            .expect("phantom perturbs");
        assert_ne!(other, copies, "another pseudonym draws another stream");
    }

    #[test]
    fn copy_features_follow_parameter_document() {
        // Each copy gets every column of a document with LoG and wavelet images, and the
        // LoG column changes with the perturbation as the original image's columns do.
        let loaded = phantom();
        let document = crate::params::document::ParameterDocument::from_json(
            r#"{"imageType":{"Original":{},"LoG":{"sigma":[2.0]},"Wavelet":{}},"featureClass":{"firstorder":["Mean","Variance"]},"setting":{"binWidth":10}}"#,
        )
        .expect("valid document");
        let features = FeatureRequest::from_document(document);
        let columns = features.feature_names();
        // 1 original + 1 LoG + 8 wavelet images, 2 features each.
        assert_eq!(columns.len(), 20, "{columns:?}");
        let original = compute_features(
            "MR_T1",
            &loaded.image,
            loaded.pixel_type,
            &loaded.roi,
            &features,
        )
        .expect("phantom extracts");
        assert_eq!(original.len(), columns.len());
        let copies = copy_features("MR_T1", "A-1", &loaded, &perturbation(2, 11), &features)
            .expect("phantom perturbs");
        assert_eq!(copies.len(), 2);
        for (repeat, values) in copies.iter().enumerate() {
            assert_eq!(values.len(), columns.len(), "repeat {repeat}");
            assert!(values.iter().all(|v| v.is_finite()), "repeat {repeat}");
            let log_mean = columns
                .iter()
                .position(|c| c == "log-sigma-2-0-mm-3D_firstorder_Mean")
                .expect("LoG column");
            assert_ne!(values[log_mean], original[log_mean], "repeat {repeat}");
        }
    }

    #[test]
    fn copy_features_nan_outside_roi_fails() {
        // A NaN outside the ROI does not affect the original's features,
        // but the B-spline rotation would spread it, so the copies fail.
        let mut loaded = phantom();
        loaded.image.data[[0, 0, 0]] = f64::NAN;
        let settings = settings();
        assert!(
            compute_features(
                "MR_T1",
                &loaded.image,
                loaded.pixel_type,
                &loaded.roi,
                &settings,
            )
            .is_ok()
        );
        let failure =
            copy_features("MR_T1", "A-1", &loaded, &perturbation(2, 11), &settings).unwrap_err();
        assert!(
            matches!(
                failure,
                CopyFailure::Perturb(PerturbError::NonFiniteIntensity { .. })
            ),
            "{failure}"
        );
    }
}
