//! Mask files of every supported kind, read into a label map and the label
//! that selects the ROI.
//!
//! The kind is detected by content. A file with the DICOM preamble whose
//! Modality is RTSTRUCT or SEG is rasterised or placed onto the image grid.
//! Anything else (NIfTI, NRRD, a DICOM label-map series) is a label map,
//! placed later by [`crate::mask::place_on_image_grid`].

use std::path::{Path, PathBuf};

use crate::config::GeometryTolerance;
use crate::image::dicom::{DicomKind, is_dicom_file, kind_of};
use crate::image::{ImageError, Volume, read_volume};

/// The ROI to select from a mask: a label number (label maps, ROINumber of
/// an RTSTRUCT, SegmentNumber of a SEG) or a name (ROIName of an RTSTRUCT,
/// SegmentLabel of a SEG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoiSelector {
    /// A label or ROI/segment number, ≥ 1.
    Number(u32),
    /// An ROI or segment name, matched exactly.
    Name(String),
}

impl std::fmt::Display for RoiSelector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoiSelector::Number(number) => write!(formatter, "{number}"),
            RoiSelector::Name(name) => write!(formatter, "{name:?}"),
        }
    }
}

impl std::str::FromStr for RoiSelector {
    type Err = String;

    /// Parses a whole number ≥ 1 as a number and any other non-empty text
    /// as a name.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the label is empty; give a number ≥ 1 or an ROI name".to_string());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u32>() {
                Ok(number) if number >= 1 => Ok(RoiSelector::Number(number)),
                _ => Err(format!(
                    "label {text} is not a whole number from 1 to {}",
                    u32::MAX
                )),
            };
        }
        Ok(RoiSelector::Name(text.to_string()))
    }
}

/// A mask file that could not be read or does not contain the ROI.
#[derive(Debug, thiserror::Error)]
pub enum MaskFileError {
    /// The file could not be read, or the RTSTRUCT/SEG does not fit the image.
    #[error(transparent)]
    Read(#[from] ImageError),
    /// A name was given for a label map, whose labels are numbers.
    #[error(
        "ROI name {name:?} cannot select from {path}: it is a label map, whose labels are numbers; give the label number, or use an RTSTRUCT or SEG mask"
    )]
    NameForLabelMap {
        /// The label map.
        path: PathBuf,
        /// The requested name.
        name: String,
    },
}

impl MaskFileError {
    /// Returns whether the file could not be opened.
    pub fn is_missing(&self) -> bool {
        matches!(self, MaskFileError::Read(error) if error.is_missing())
    }

    /// Returns the message without paths, safe to send off site.
    pub fn shareable_reason(&self) -> String {
        match self {
            MaskFileError::Read(error) => error.shareable_reason(),
            MaskFileError::NameForLabelMap { name, .. } => {
                format!("ROI name {name:?} cannot select from a label map; give the label number")
            }
        }
    }
}

/// Reads the mask at `path` for `image` and returns a label map with the
/// label that selects the ROI. For RTSTRUCT and SEG the map is on the image
/// grid already and holds only the selected ROI; for a label map the label
/// is the selector's number and the map's own grid is kept.
/// `image_frame` is the image's FrameOfReferenceUID, which an RTSTRUCT or
/// SEG must share.
pub fn read_mask(
    path: &Path,
    image: &Volume,
    image_frame: Option<&str>,
    selector: &RoiSelector,
    tolerance: &GeometryTolerance,
) -> Result<(Volume, u32), MaskFileError> {
    let kind = if is_dicom_file(path) {
        kind_of(path).map_err(ImageError::from)?
    } else {
        DicomKind::Image
    };
    match kind {
        DicomKind::RtStruct => {
            Ok(
                super::rtstruct::read_roi(path, image, image_frame, selector, tolerance)
                    .map_err(ImageError::from)?,
            )
        }
        DicomKind::Seg => {
            Ok(
                super::seg::read_segment(path, image, image_frame, selector, tolerance)
                    .map_err(ImageError::from)?,
            )
        }
        DicomKind::Image => match selector {
            RoiSelector::Number(label) => Ok((read_volume(path)?, *label)),
            RoiSelector::Name(name) => Err(MaskFileError::NameForLabelMap {
                path: path.to_path_buf(),
                name: name.clone(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parses_numbers_and_names() {
        assert_eq!("3".parse::<RoiSelector>(), Ok(RoiSelector::Number(3)));
        assert_eq!(
            " GTV-1 ".parse::<RoiSelector>(),
            Ok(RoiSelector::Name("GTV-1".to_string()))
        );
        assert!("0".parse::<RoiSelector>().is_err());
        assert!("".parse::<RoiSelector>().is_err());
        assert!("99999999999".parse::<RoiSelector>().is_err());
    }
}
