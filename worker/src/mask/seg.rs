//! DICOM Segmentation (SEG) masks: one segment's frames, placed on the image
//! grid by physical position.
//!
//! The segment is chosen by SegmentNumber (0062,0004) or SegmentLabel
//! (0062,0005). A frame belongs to it when ReferencedSegmentNumber
//! (0062,000B) in the frame's SegmentIdentificationSequence is that number.
//! The frame's position, orientation and pixel spacing come from the
//! functional groups.
//! Each frame must lie on an image slice with the image's orientation and
//! pixel spacing, and its pixels on image voxel centres, within the worker's
//! geometry tolerance. A frame may cover the whole slice or part of it.
//!
//! Only SegmentationType BINARY is read. FRACTIONAL segmentations are
//! rejected, as non-integer label maps are: a probability or occupancy map
//! needs a threshold that the study, not the reader, must choose.

use std::path::Path;

use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use ndarray::Array3;

use crate::config::GeometryTolerance;
use crate::image::Volume;
use crate::image::dicom::attributes::{Attributes, describe};
use crate::image::dicom::functional_groups::{FrameGroups, frame_groups};
use crate::image::dicom::{DicomError, dimension, open_object};
use crate::mask::file::RoiSelector;
use crate::mask::rtstruct::check_frame_of_reference;

/// Reads the SEG at `path`, selects one segment and places its frames on
/// the grid of `image`. Returns a label map on the image grid whose segment
/// voxels hold the segment number, and that number as the label to select.
pub fn read_segment(
    path: &Path,
    image: &Volume,
    image_frame: Option<&str>,
    selector: &RoiSelector,
    tolerance: &GeometryTolerance,
) -> Result<(Volume, u32), DicomError> {
    let attributes = Attributes::new(path);
    let object = open_object(path, false)?;

    let segmentation_type = attributes.required_text(&object, tags::SEGMENTATION_TYPE)?;
    if segmentation_type != "BINARY" {
        return Err(attributes.invalid(format!(
            "SegmentationType (0062,0001) is {segmentation_type}; only BINARY segments are read, \
             because a FRACTIONAL map needs a threshold that the study must choose; \
             threshold it into a BINARY SEG or a label map"
        )));
    }

    let mut segments = Vec::new();
    for item in attributes.items(&object, tags::SEGMENT_SEQUENCE)? {
        let number = attributes.required_integer(item, tags::SEGMENT_NUMBER)?;
        let label = attributes
            .text(item, tags::SEGMENT_LABEL)?
            .unwrap_or_default();
        segments.push((number, label));
    }
    let chosen = segments.iter().find(|(number, label)| match selector {
        RoiSelector::Number(wanted) => *number == i64::from(*wanted),
        RoiSelector::Name(name) => label == name,
    });
    let Some((number, segment_label)) = chosen else {
        return Err(DicomError::RoiNotFound {
            path: path.to_path_buf(),
            kind: "segment",
            requested: selector.to_string(),
            present: segments
                .iter()
                .map(|(number, label)| format!("{number} {label:?}"))
                .collect(),
        });
    };
    let label = u32::try_from(*number)
        .ok()
        .filter(|&label| label >= 1)
        .ok_or_else(|| {
            attributes.invalid(format!(
                "segment {segment_label:?} has SegmentNumber (0062,0004) {number}; segment numbers start at 1"
            ))
        })?;

    let mask_frame = attributes.text(&object, tags::FRAME_OF_REFERENCE_UID)?;
    check_frame_of_reference(path, mask_frame.as_deref(), image_frame)?;

    let rows = dimension(&attributes, &object, tags::ROWS)?;
    let columns = dimension(&attributes, &object, tags::COLUMNS)?;
    let frames = attributes
        .integer(&object, tags::NUMBER_OF_FRAMES)?
        .unwrap_or(1);
    let frames = usize::try_from(frames)
        .ok()
        .filter(|&frames| frames >= 1)
        .ok_or_else(|| attributes.invalid(format!("NumberOfFrames (0028,0008) is {frames}")))?;
    let bits = attributes.required_integer(&object, tags::BITS_ALLOCATED)?;
    if bits != 1 {
        return Err(attributes.invalid(format!(
            "BitsAllocated (0028,0100) is {bits}; a BINARY segmentation stores 1 bit per pixel"
        )));
    }
    let pixel_data = object
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| attributes.invalid("Pixel Data (7FE0,0010) is missing".to_string()))?;
    // NOTE: encapsulated SEG pixel data (the standard allows RLE Lossless)
    // is rejected, not decoded.
    let Value::Primitive(packed) = pixel_data.value() else {
        return Err(attributes.invalid(format!(
            "Pixel Data (7FE0,0010) is encapsulated (transfer syntax {}); store the SEG uncompressed",
            object.meta().transfer_syntax()
        )));
    };
    let packed = packed.to_bytes();
    let frame_pixels = rows * columns;
    if packed.len() * 8 < frame_pixels * frames {
        return Err(attributes.invalid(format!(
            "Pixel Data (7FE0,0010) has {} bytes, fewer than {frames} frames of {rows} × {columns} bits need",
            packed.len()
        )));
    }

    let groups = frame_groups(&attributes, &object, frames)?;
    let per_frame = attributes.items(&object, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)?;
    let mut data = Array3::<f64>::zeros(image.geometry.dims);
    for (index, (group, item)) in groups.iter().zip(per_frame).enumerate() {
        let identification = attributes.first_item(item, tags::SEGMENT_IDENTIFICATION_SEQUENCE)?;
        let referenced = match identification {
            Some(identification) => {
                attributes.integer(identification, tags::REFERENCED_SEGMENT_NUMBER)?
            }
            None => None,
        };
        let Some(referenced) = referenced else {
            return Err(attributes.invalid(format!(
                "frame {}: {} with {} is missing",
                index + 1,
                describe(tags::SEGMENT_IDENTIFICATION_SEQUENCE),
                describe(tags::REFERENCED_SEGMENT_NUMBER)
            )));
        };
        if referenced != *number {
            continue;
        }
        let offset = frame_offset(path, index, group, image, tolerance)?;
        let first_bit = index * frame_pixels;
        for row in 0..rows {
            for column in 0..columns {
                let bit = first_bit + row * columns + column;
                if packed[bit / 8] >> (bit % 8) & 1 == 0 {
                    continue;
                }
                let target = [offset[0] + column as i64, offset[1] + row as i64, offset[2]];
                let inside =
                    (0..3).all(|c| target[c] >= 0 && (target[c] as usize) < image.geometry.dims[c]);
                if !inside {
                    return Err(DicomError::Placement {
                        path: path.to_path_buf(),
                        message: format!(
                            "frame {} of segment {number}: pixel (row {row}, column {column}) falls on image index {target:?}, outside the image of size {:?}",
                            index + 1,
                            image.geometry.dims
                        ),
                    });
                }
                data[[target[0] as usize, target[1] as usize, target[2] as usize]] =
                    f64::from(label);
            }
        }
    }
    Ok((
        Volume {
            data,
            geometry: image.geometry.clone(),
            stored_as_integer: true,
        },
        label,
    ))
}

/// Returns the image index of the frame's first pixel, after checking that
/// the frame's rows and columns run along the image's j and i axes with the
/// same spacing and that its pixels sit on voxel centres.
fn frame_offset(
    path: &Path,
    index: usize,
    group: &FrameGroups,
    image: &Volume,
    tolerance: &GeometryTolerance,
) -> Result<[i64; 3], DicomError> {
    let geometry = &image.geometry;
    let placement = |message: String| DicomError::Placement {
        path: path.to_path_buf(),
        message: format!("frame {}: {message}", index + 1),
    };
    // LPS to RAS: x and y change sign.
    let to_ras = |v: &[f64]| [-v[0], -v[1], v[2]];
    let row_direction = to_ras(&group.orientation[0..3]);
    let column_direction = to_ras(&group.orientation[3..6]);
    for (axis, direction) in [(0, row_direction), (1, column_direction)] {
        let differs = (0..3)
            .any(|r| (geometry.direction[r][axis] - direction[r]).abs() > tolerance.direction);
        if differs {
            return Err(placement(format!(
                "ImageOrientationPatient (0020,0037) {:?} differs from the image's; the SEG was made on another grid",
                group.orientation
            )));
        }
    }
    // PixelSpacing is (between rows, between columns) = (j, i) spacing.
    for (axis, spacing) in [(0, group.pixel_spacing[1]), (1, group.pixel_spacing[0])] {
        let reference = geometry.spacing[axis];
        if (spacing - reference).abs() > tolerance.spacing_relative * spacing.abs().max(reference) {
            return Err(placement(format!(
                "PixelSpacing (0028,0030) {:?} mm differs from the image's {:?} mm",
                group.pixel_spacing,
                [geometry.spacing[1], geometry.spacing[0]]
            )));
        }
    }

    let ras = to_ras(&group.position);
    let world: [f64; 3] = std::array::from_fn(|r| ras[r] - geometry.origin[r]);
    let continuous: [f64; 3] = std::array::from_fn(|c| {
        (0..3)
            .map(|r| geometry.direction[r][c] * world[r])
            .sum::<f64>()
            / geometry.spacing[c]
    });
    let offset: [i64; 3] = std::array::from_fn(|c| continuous[c].round() as i64);
    let distance_mm = (0..3)
        .map(|c| ((continuous[c] - offset[c] as f64) * geometry.spacing[c]).powi(2))
        .sum::<f64>()
        .sqrt();
    if distance_mm > tolerance.origin_mm {
        return Err(placement(format!(
            "ImagePositionPatient (0020,0032) {:?} is {distance_mm:.4} mm from the nearest image voxel centre (tolerance {} mm)",
            group.position, tolerance.origin_mm
        )));
    }
    if offset[2] < 0 || offset[2] >= geometry.dims[2] as i64 {
        return Err(placement(format!(
            "ImagePositionPatient (0020,0032) {:?} is on slice k = {}, outside the image's {} slices",
            group.position, offset[2], geometry.dims[2]
        )));
    }
    Ok(offset)
}
