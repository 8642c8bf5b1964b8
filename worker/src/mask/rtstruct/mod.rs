//! RT Structure Set (RTSTRUCT) masks: one ROI's closed planar contours,
//! rasterised onto the image grid.
//!
//! The ROI is chosen by ROIName (3006,0026) or ROINumber (3006,0022) in
//! StructureSetROISequence (3006,0020). Its contours come from the
//! ROIContourSequence (3006,0039) item whose ReferencedROINumber matches.
//! Only CLOSED_PLANAR contours enclose voxels; POINT and OPEN_PLANAR
//! contours are skipped with a warning. The fill rule is in
//! [`crate::mask::polygon`]: voxel centres inside an odd number of the
//! slice's contours.

pub mod rasterise;

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::config::GeometryTolerance;
use crate::image::Volume;
use crate::image::dicom::attributes::{Attributes, describe};
use crate::image::dicom::{DicomError, open_object};
use crate::mask::file::RoiSelector;
use rasterise::{Contour, rasterise};

/// One entry of StructureSetROISequence.
#[derive(Debug, Clone, PartialEq)]
pub struct StructureSetRoi {
    /// ROINumber (3006,0022).
    pub number: i64,
    /// ROIName (3006,0026); empty when absent.
    pub name: String,
    /// ReferencedFrameOfReferenceUID (3006,0024).
    pub frame_of_reference: Option<String>,
}

/// Reads the RTSTRUCT at `path`, selects one ROI and rasterises it onto the
/// grid of `image`. Returns a label map on the image grid whose ROI voxels
/// hold the ROI number, and that number as the label to select.
///
/// The ROI's frame of reference must equal `image_frame` when both are
/// known. An image without one (NIfTI, NRRD) gets the contours by position
/// alone, and a warning is logged.
pub fn read_roi(
    path: &Path,
    image: &Volume,
    image_frame: Option<&str>,
    selector: &RoiSelector,
    tolerance: &GeometryTolerance,
) -> Result<(Volume, u32), DicomError> {
    let attributes = Attributes::new(path);
    let object = open_object(path, false)?;
    let rois = structure_set_rois(&attributes, &object)?;
    let roi = select(path, &rois, selector)?;

    let label = u32::try_from(roi.number)
        .ok()
        .filter(|&label| label >= 1)
        .ok_or_else(|| {
            attributes.invalid(format!(
                "ROI {:?} has ROINumber (3006,0022) {}; a label must be a whole number from 1 to {}",
                roi.name,
                roi.number,
                u32::MAX
            ))
        })?;

    let mask_frame = match &roi.frame_of_reference {
        Some(uid) => Some(uid.clone()),
        None => attributes.text(&object, tags::FRAME_OF_REFERENCE_UID)?,
    };
    check_frame_of_reference(path, mask_frame.as_deref(), image_frame)?;

    let contours = closed_contours(&attributes, &object, roi)?;
    if contours.is_empty() {
        return Err(attributes.invalid(format!(
            "ROI {:?} (ROINumber {}) has no CLOSED_PLANAR contour in {}",
            roi.name,
            roi.number,
            describe(tags::ROI_CONTOUR_SEQUENCE)
        )));
    }
    let data = rasterise(
        &contours,
        &image.geometry,
        f64::from(label),
        tolerance.origin_mm,
        path,
    )?;
    Ok((
        Volume {
            data,
            geometry: image.geometry.clone(),
            stored_as_integer: true,
        },
        label,
    ))
}

/// Checks that a mask and an image share one frame of reference.
pub fn check_frame_of_reference(
    path: &Path,
    mask: Option<&str>,
    image: Option<&str>,
) -> Result<(), DicomError> {
    match (mask, image) {
        (Some(mask), Some(image)) if mask != image => Err(DicomError::FrameOfReference {
            path: path.to_path_buf(),
            mask: mask.to_string(),
            image: image.to_string(),
        }),
        (Some(_), Some(_)) => Ok(()),
        _ => {
            tracing::warn!(
                mask = %path.display(),
                "the mask or the image states no FrameOfReferenceUID; the mask is placed by physical position alone"
            );
            Ok(())
        }
    }
}

/// Reads StructureSetROISequence.
pub fn structure_set_rois(
    attributes: &Attributes<'_>,
    object: &InMemDicomObject,
) -> Result<Vec<StructureSetRoi>, DicomError> {
    let items = attributes.items(object, tags::STRUCTURE_SET_ROI_SEQUENCE)?;
    if items.is_empty() {
        return Err(attributes.invalid(format!(
            "{} is missing or empty; the file defines no ROI",
            describe(tags::STRUCTURE_SET_ROI_SEQUENCE)
        )));
    }
    items
        .iter()
        .map(|item| {
            Ok(StructureSetRoi {
                number: attributes.required_integer(item, tags::ROI_NUMBER)?,
                name: attributes.text(item, tags::ROI_NAME)?.unwrap_or_default(),
                frame_of_reference: attributes
                    .text(item, tags::REFERENCED_FRAME_OF_REFERENCE_UID)?,
            })
        })
        .collect()
}

/// Finds the ROI that `selector` names; the error lists every ROI.
fn select<'r>(
    path: &Path,
    rois: &'r [StructureSetRoi],
    selector: &RoiSelector,
) -> Result<&'r StructureSetRoi, DicomError> {
    let found = match selector {
        RoiSelector::Name(name) => rois.iter().find(|roi| &roi.name == name),
        RoiSelector::Number(number) => rois.iter().find(|roi| roi.number == i64::from(*number)),
    };
    found.ok_or_else(|| DicomError::RoiNotFound {
        path: path.to_path_buf(),
        kind: "ROI",
        requested: selector.to_string(),
        present: rois
            .iter()
            .map(|roi| format!("{} {:?}", roi.number, roi.name))
            .collect(),
    })
}

/// Collects the CLOSED_PLANAR contours of one ROI.
fn closed_contours(
    attributes: &Attributes<'_>,
    object: &InMemDicomObject,
    roi: &StructureSetRoi,
) -> Result<Vec<Contour>, DicomError> {
    let mut contours = Vec::new();
    for roi_contour in attributes.items(object, tags::ROI_CONTOUR_SEQUENCE)? {
        if attributes.integer(roi_contour, tags::REFERENCED_ROI_NUMBER)? != Some(roi.number) {
            continue;
        }
        let mut skipped = 0;
        for (index, contour) in attributes
            .items(roi_contour, tags::CONTOUR_SEQUENCE)?
            .iter()
            .enumerate()
        {
            let item = index + 1;
            let geometric_type = attributes.required_text(contour, tags::CONTOUR_GEOMETRIC_TYPE)?;
            if geometric_type != "CLOSED_PLANAR" {
                skipped += 1;
                continue;
            }
            let data_tag = tags::CONTOUR_DATA;
            let count = attributes.required_integer(contour, tags::NUMBER_OF_CONTOUR_POINTS)?;
            let points = usize::try_from(count)
                .ok()
                .filter(|&points| points >= 3)
                .ok_or_else(|| {
                    attributes.invalid(format!(
                        "ROI {:?} contour item {item}: NumberOfContourPoints (3006,0046) is {count}; a closed contour needs at least 3",
                        roi.name
                    ))
                })?;
            let coordinates = attributes.required_numbers(contour, data_tag, points * 3)?;
            contours.push(Contour {
                item,
                points: coordinates
                    .chunks_exact(3)
                    .map(|point| [point[0], point[1], point[2]])
                    .collect(),
            });
        }
        if skipped > 0 {
            tracing::warn!(
                roi = %roi.name,
                skipped,
                "skipped POINT or OPEN_PLANAR contours, which enclose no voxels"
            );
        }
    }
    Ok(contours)
}
