//! One patient and sequence, from files to a feature vector.
//!
//! Steps: open the image and mask under the data root, check that they share
//! one grid, select the ROI label, check the ROI's intensities, and compute
//! the features. Any failure becomes an [`Exclusion`] for this patient and
//! sequence only.

use std::path::{Path, PathBuf};

use crate::config::GeometryTolerance;
use crate::error::{Exclusion, ExclusionKind};
use crate::feature_request::{FeatureRequest, RoundParameters};
use crate::features::{self, FeatureError};
use crate::image::dicom::DicomError;
use crate::image::{self, ImageError, ImageFile, PixelType, Volume};
use crate::manifest::SequenceFiles;
use crate::mask::file::{MaskFileError, RoiSelector, read_mask};
use crate::mask::{self, MaskError, Roi};

/// Settings shared by every extraction of a round.
#[derive(Debug, Clone)]
pub struct ExtractContext<'a> {
    /// The data root, canonicalised, so that links out of it are caught.
    pub canonical_root: &'a Path,
    /// Validated features and mask label.
    pub features: &'a FeatureRequest,
    /// Image/mask geometry tolerance.
    pub tolerance: &'a GeometryTolerance,
}

/// An image with its region of interest, checked and ready for feature
/// computation.
#[derive(Debug, Clone)]
pub struct LoadedSequence {
    /// The image.
    pub image: Volume,
    /// The pixel type SimpleITK would read the image file as.
    pub pixel_type: PixelType,
    /// The ROI of the requested label, on the image grid.
    pub roi: Roi,
}

/// Extracts the features of one sequence; `sequence` names the manifest
/// columns in errors.
pub fn extract_sequence(
    sequence: &str,
    files: &SequenceFiles,
    context: &ExtractContext<'_>,
) -> Result<Vec<f64>, Exclusion> {
    let loaded = load_sequence(sequence, files, context)?;
    compute_features(
        sequence,
        &loaded.image,
        loaded.pixel_type,
        &loaded.roi,
        context.features,
    )
}

/// Opens the image and mask of one sequence, checks that they share one
/// grid, and selects the ROI label. The ROI must span
/// [`FeatureRequest::minimum_roi_dimensions`] axes.
pub fn load_sequence(
    sequence: &str,
    files: &SequenceFiles,
    context: &ExtractContext<'_>,
) -> Result<LoadedSequence, Exclusion> {
    let image_field = format!("{sequence}_image");
    let mask_field = format!("{sequence}_mask");

    let file = open_image(&files.image, &image_field, context.canonical_root)?;
    let image = file.volume;
    let image_frame = file.frame_of_reference_uid;
    // The manifest's `<sequence>_label` cell, when set, replaces the study's
    // label: a label value, an RTSTRUCT ROINumber or a SEG SegmentNumber.
    let selector = files
        .label
        .clone()
        .unwrap_or(RoiSelector::Number(context.features.settings.label));
    check_under_root(&files.mask, &mask_field, context.canonical_root)?;
    let (labels, label) = read_mask(
        &files.mask,
        &image,
        image_frame.as_deref(),
        &selector,
        context.tolerance,
    )
    .map_err(|error| {
        let kind = match &error {
            error if error.is_missing() => ExclusionKind::FileMissing,
            MaskFileError::Read(ImageError::Dicom(
                DicomError::FrameOfReference { .. } | DicomError::Placement { .. },
            )) => ExclusionKind::GeometryMismatch,
            MaskFileError::Read(ImageError::Dicom(DicomError::RoiNotFound { .. }))
            | MaskFileError::NameForLabelMap { .. } => ExclusionKind::MaskInvalid,
            _ => ExclusionKind::FileInvalid,
        };
        Exclusion::new(kind, &mask_field, error.shareable_reason())
    })?;
    if !labels.stored_as_integer {
        // Whole-valued float masks are common (tools that save every image as
        // float32); non-integer values are rejected by `select_label`.
        tracing::warn!(
            field = %mask_field,
            "mask is stored as floating point; accepted because every value is checked to be \
             a whole label, but store masks as integers to rule out interpolated masks"
        );
    }

    // A mask on the image grid, on a box of it or on a larger grid around it
    // is placed by physical position, and a larger grid is cropped when the
    // ROI lies inside the image. Any other grid is a mismatch, never
    // overlaid by index.
    let labels = mask::into_image_grid(labels, &image.geometry, context.tolerance, label).map_err(
        |error| {
            Exclusion::new(
                ExclusionKind::GeometryMismatch,
                &mask_field,
                error.to_string(),
            )
        },
    )?;

    let roi =
        mask::select_label_spanning(&labels, label, context.features.minimum_roi_dimensions())
            .map_err(|error| {
                let kind = match error {
                    MaskError::TooSmall { .. } => ExclusionKind::RoiTooSmall,
                    MaskError::NonInteger { .. }
                    | MaskError::LabelAbsent { .. }
                    | MaskError::Empty => ExclusionKind::MaskInvalid,
                };
                Exclusion::new(kind, &mask_field, error.to_string())
            })?;
    Ok(LoadedSequence {
        image,
        pixel_type: file.pixel_type,
        roi,
    })
}

/// Checks the ROI's intensities and computes the features of one image and
/// ROI, one value per [`FeatureRequest::feature_names`] column, rejecting
/// any feature that is not finite. Perturbed copies and habitat regions go
/// through the same checks as the original, with the pixel type of the file they come
/// from. `pixel_type` sets the wavelet filter's precision (see [`PixelType`]).
pub fn compute_features(
    sequence: &str,
    image: &Volume,
    pixel_type: PixelType,
    roi: &Roi,
    request: &FeatureRequest,
) -> Result<Vec<f64>, Exclusion> {
    if let Some(parameters) = &request.parameters {
        return compute_parameter_features(sequence, image, pixel_type, roi, request, parameters);
    }
    let settings = &request.settings;
    let image_field = format!("{sequence}_image");

    let values = mask::roi_values(image, roi).map_err(|non_finite| {
        Exclusion::new(
            ExclusionKind::IntensityInvalid,
            &image_field,
            format!(
                "{non_finite} of {} ROI voxels are NaN or infinite",
                roi.voxel_count
            ),
        )
    })?;

    let features = features::compute(image, roi, &values, settings).map_err(|error| {
        Exclusion::new(
            ExclusionKind::IntensityInvalid,
            &image_field,
            error.to_string(),
        )
    })?;
    let names = settings.feature_names();
    if let Some(index) = features.iter().position(|value| !value.is_finite()) {
        let name = names.get(index).map(String::as_str).unwrap_or("?");
        return Err(Exclusion::new(
            ExclusionKind::IntensityInvalid,
            &image_field,
            format!(
                "feature {name} evaluates to {}; the ROI intensities cannot support it",
                features[index]
            ),
        ));
    }
    Ok(features)
}

/// Computes the columns of a parameter document with the pipeline of
/// `radstudy-worker extract --param`, and places the values in column order.
/// A column without a value (a LoG σ that the image is too small for, which
/// PyRadiomics skips) excludes the patient, because every row of a round's
/// table has a value in every column.
fn compute_parameter_features(
    sequence: &str,
    image: &Volume,
    pixel_type: PixelType,
    roi: &Roi,
    request: &FeatureRequest,
    parameters: &RoundParameters,
) -> Result<Vec<f64>, Exclusion> {
    let image_field = format!("{sequence}_image");
    let parsed = parameters.document.parsed();
    if let Some(minimum) = parsed.options.minimum_roi_size
        && roi.voxel_count < minimum
    {
        return Err(Exclusion::new(
            ExclusionKind::RoiTooSmall,
            format!("{sequence}_mask"),
            format!(
                "ROI has {} voxels, fewer than minimumROISize = {minimum}",
                roi.voxel_count
            ),
        ));
    }
    let named = features::image_types::compute_image_types(
        image,
        pixel_type,
        roi,
        &request.settings,
        &parsed.options,
        &parsed.image_types,
    )
    .map_err(|error| {
        let kind = match error {
            FeatureError::Resegment(_) | FeatureError::ResampledRoi(_) => {
                ExclusionKind::RoiTooSmall
            }
            _ => ExclusionKind::IntensityInvalid,
        };
        Exclusion::new(kind, &image_field, error.to_string())
    })?;

    let by_name: std::collections::HashMap<&str, f64> = named
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    let mut values = Vec::with_capacity(parameters.columns.len());
    for column in &parameters.columns {
        let Some(&value) = by_name.get(column.as_str()) else {
            return Err(Exclusion::new(
                ExclusionKind::RoiTooSmall,
                &image_field,
                format!(
                    "feature {column} has no value: its filtered image was skipped (a LoG sigma needs ceil(sigma / spacing) + 1 and at least 4 voxels along every axis of the image, or of the cropped image with preCrop)"
                ),
            ));
        };
        values.push(value);
    }
    Ok(values)
}

/// Returns an exclusion unless the real path of `path`, and of every entry
/// when it is a folder (a DICOM series), stays under the root.
fn check_under_root(path: &Path, field: &str, canonical_root: &Path) -> Result<(), Exclusion> {
    let real: PathBuf = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(error) => {
            let reason = if error.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "file not found; check the patient's `{field}` path in the manifest \
                     (relative to the worker's data_root)"
                )
            } else {
                format!("cannot open file: {error}")
            };
            return Err(Exclusion::new(ExclusionKind::FileMissing, field, reason));
        }
    };
    let outside = || {
        Exclusion::new(
            ExclusionKind::FileInvalid,
            field,
            "file resolves outside the data root through a symbolic link",
        )
    };
    if !real.starts_with(canonical_root) {
        return Err(outside());
    }
    if real.is_dir() {
        let entries = std::fs::read_dir(&real).map_err(|error| {
            Exclusion::new(
                ExclusionKind::FileInvalid,
                field,
                format!("cannot list the folder: {error}"),
            )
        })?;
        for entry in entries.flatten() {
            let inside = std::fs::canonicalize(entry.path())
                .is_ok_and(|target| target.starts_with(canonical_root));
            if !inside {
                return Err(outside());
            }
        }
    }
    Ok(())
}

/// Opens an image (with its DICOM frame of reference, if any) after
/// checking that its real path stays under the root.
fn open_image(path: &Path, field: &str, canonical_root: &Path) -> Result<ImageFile, Exclusion> {
    check_under_root(path, field, canonical_root)?;
    let real = std::fs::canonicalize(path).map_err(|error| {
        Exclusion::new(
            ExclusionKind::FileMissing,
            field,
            format!("cannot open file: {error}"),
        )
    })?;
    image::read_image_file(&real).map_err(|error| {
        let kind = if error.is_missing() {
            ExclusionKind::FileMissing
        } else {
            ExclusionKind::FileInvalid
        };
        Exclusion::new(kind, field, error.shareable_reason())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_root() -> PathBuf {
        std::env::var_os("RADSTUDY_DATA_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
    }

    fn settings() -> FeatureRequest {
        FeatureRequest::from_settings(features::ExtractionSettings {
            classes: vec![features::FeatureClass::FirstOrder],
            bin_width: 25.0,
            label: 1,
        })
    }

    fn files(patient: &str, sequence: &str) -> SequenceFiles {
        let root = data_root();
        SequenceFiles {
            image: root.join(format!("sts/{patient}/{sequence}_image.nii.gz")),
            mask: root.join(format!("sts/{patient}/{sequence}_mask.nii.gz")),
            label: None,
        }
    }

    /// The values an [`ExtractContext`] borrows: the canonical data root, the
    /// feature request of `settings()` and the default geometry tolerance.
    struct OwnedContext {
        root: PathBuf,
        settings: FeatureRequest,
        tolerance: GeometryTolerance,
    }

    impl OwnedContext {
        fn new() -> Self {
            OwnedContext {
                root: std::fs::canonicalize(data_root()).expect("data root exists"),
                settings: settings(),
                tolerance: GeometryTolerance::default(),
            }
        }

        fn context(&self) -> ExtractContext<'_> {
            ExtractContext {
                canonical_root: &self.root,
                features: &self.settings,
                tolerance: &self.tolerance,
            }
        }
    }

    #[test]
    fn extract_sts_pet_gives_one_value_per_feature() {
        let owned = OwnedContext::new();
        let context = owned.context();
        let values = extract_sequence("PET", &files("STS_001", "PET"), &context)
            .expect("STS_001 PET extracts");
        assert_eq!(values.len(), owned.settings.feature_names().len());
    }

    #[test]
    fn extract_missing_image_names_field() {
        let owned = OwnedContext::new();
        let context = owned.context();
        // STS_009 has no MR image in the data set, as its README states.
        let error = extract_sequence("MR_T1", &files("STS_009", "MR_T1"), &context).unwrap_err();
        assert_eq!(error.kind, ExclusionKind::FileMissing);
        assert_eq!(error.field, "MR_T1_image");
        assert_eq!(
            error.reason,
            "file not found; check the patient's `MR_T1_image` path in the manifest \
             (relative to the worker's data_root)"
        );
    }

    #[test]
    fn extract_mask_from_other_grid_is_geometry_mismatch() {
        let owned = OwnedContext::new();
        let context = owned.context();
        let mut crossed = files("STS_001", "MR_T1");
        crossed.mask = files("STS_001", "PET").mask;
        let error = extract_sequence("MR_T1", &crossed, &context).unwrap_err();
        assert_eq!(error.kind, ExclusionKind::GeometryMismatch);
        assert_eq!(error.field, "MR_T1_mask");
    }
}
