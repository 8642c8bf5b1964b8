//! Per-frame geometry and intensity scaling of multi-frame objects (enhanced
//! CT/MR/PET images and SEG), from the functional group sequences.
//!
//! Each attribute is taken from the frame's item of
//! PerFrameFunctionalGroupsSequence (5200,9230) when present there, else
//! from the single item of SharedFunctionalGroupsSequence (5200,9229).

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::DicomError;
use super::attributes::{Attributes, describe};

/// Placement and scaling of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameGroups {
    /// ImagePositionPatient of PlanePositionSequence, LPS mm.
    pub position: [f64; 3],
    /// ImageOrientationPatient of PlaneOrientationSequence.
    pub orientation: [f64; 6],
    /// PixelSpacing of PixelMeasuresSequence, mm (rows, then columns).
    pub pixel_spacing: [f64; 2],
    /// SliceThickness of PixelMeasuresSequence, mm.
    pub slice_thickness: Option<f64>,
    /// RescaleSlope and RescaleIntercept of PixelValueTransformationSequence.
    pub rescale: Option<(f64, f64)>,
}

/// Reads the functional groups of every frame of `object`.
pub fn frame_groups(
    attributes: &Attributes<'_>,
    object: &InMemDicomObject,
    frames: usize,
) -> Result<Vec<FrameGroups>, DicomError> {
    let shared = attributes.first_item(object, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)?;
    let per_frame = attributes.items(object, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)?;
    if per_frame.len() != frames {
        return Err(attributes.invalid(format!(
            "{} has {} items but NumberOfFrames (0028,0008) is {frames}",
            describe(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE),
            per_frame.len()
        )));
    }

    let macro_item = |frame, sequence| macro_item(attributes, frame, shared, sequence);

    let mut groups = Vec::with_capacity(frames);
    for (index, frame) in per_frame.iter().enumerate() {
        let missing = |sequence: Tag, attribute: Tag| {
            attributes.invalid(format!(
                "frame {}: {} with {} is missing from both the per-frame and the shared functional groups",
                index + 1,
                describe(sequence),
                describe(attribute)
            ))
        };

        let position = macro_item(frame, tags::PLANE_POSITION_SEQUENCE)?
            .map(|item| attributes.numbers(item, tags::IMAGE_POSITION_PATIENT, 3))
            .transpose()?
            .flatten()
            .ok_or_else(|| missing(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT))?;
        let orientation = macro_item(frame, tags::PLANE_ORIENTATION_SEQUENCE)?
            .map(|item| attributes.numbers(item, tags::IMAGE_ORIENTATION_PATIENT, 6))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                missing(
                    tags::PLANE_ORIENTATION_SEQUENCE,
                    tags::IMAGE_ORIENTATION_PATIENT,
                )
            })?;
        let measures = macro_item(frame, tags::PIXEL_MEASURES_SEQUENCE)?;
        let pixel_spacing = measures
            .map(|item| attributes.numbers(item, tags::PIXEL_SPACING, 2))
            .transpose()?
            .flatten()
            .ok_or_else(|| missing(tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING))?;
        let slice_thickness = measures
            .map(|item| attributes.number(item, tags::SLICE_THICKNESS))
            .transpose()?
            .flatten();
        let rescale = match macro_item(frame, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)? {
            Some(item) => {
                let slope = attributes.number(item, tags::RESCALE_SLOPE)?;
                let intercept = attributes.number(item, tags::RESCALE_INTERCEPT)?;
                slope.map(|slope| (slope, intercept.unwrap_or(0.0)))
            }
            None => None,
        };

        groups.push(FrameGroups {
            position: [position[0], position[1], position[2]],
            orientation: std::array::from_fn(|c| orientation[c]),
            pixel_spacing: [pixel_spacing[0], pixel_spacing[1]],
            slice_thickness,
            rescale,
        });
    }
    Ok(groups)
}

/// Returns the item of a functional group sequence for one frame: the
/// frame's own, else the shared one.
fn macro_item<'o>(
    attributes: &Attributes<'_>,
    frame: &'o InMemDicomObject,
    shared: Option<&'o InMemDicomObject>,
    sequence: Tag,
) -> Result<Option<&'o InMemDicomObject>, DicomError> {
    if let Some(item) = attributes.first_item(frame, sequence)? {
        return Ok(Some(item));
    }
    match shared {
        Some(shared) => attributes.first_item(shared, sequence),
        None => Ok(None),
    }
}
