//! DICOM input through the dicom-rs crates: image series here, RTSTRUCT and
//! SEG masks in [`crate::mask`].
//!
//! An image is a folder holding one series of single-frame files, one file
//! of such a series (its folder is scanned for the rest of the series), or
//! one enhanced multi-frame file. Conventions:
//!
//! - Slices are sorted by their position along the slice normal, the cross
//!   product of the row and column directions of ImageOrientationPatient,
//!   so k grows along the normal whatever the file order or InstanceNumber.
//! - Voxel index i is the column and j the row. So i runs along the row
//!   direction (the first three values of ImageOrientationPatient), with
//!   the second PixelSpacing value as its spacing.
//! - World frame: DICOM patient coordinates are LPS, and the [`Geometry`]
//!   is RAS+ like NIfTI's, so x and y change sign on reading.
//! - Intensities are `stored · RescaleSlope + RescaleIntercept`, per file
//!   or, in multi-frame files, per frame.
//! - The slices must share orientation, size and pixel spacing, have equal
//!   gaps (within 1% of the median gap) and lie on one line along the
//!   normal. Otherwise the error names the file where the grid breaks.
//!
//! [`Geometry`]: crate::image::Geometry

pub mod attributes;
mod error;
pub mod functional_groups;
pub mod pixels;
mod series;
pub mod stack;

use std::io::Read;
use std::path::Path;

use dicom_dictionary_std::tags;

pub use error::DicomError;
pub use series::SeriesFiles;
pub(crate) use series::{dimension, open_object};

use super::Volume;
use attributes::Attributes;

/// A DICOM image and the frame of reference its positions are in.
#[derive(Debug, Clone)]
pub struct DicomImage {
    /// The voxels and their RAS geometry.
    pub volume: Volume,
    /// FrameOfReferenceUID (0020,0052), when the files state it.
    pub frame_of_reference_uid: Option<String>,
}

/// The kind of object in a DICOM file, by its Modality (0008,0060).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DicomKind {
    /// An RT Structure Set: contours of named ROIs.
    RtStruct,
    /// A Segmentation: binary or fractional segment frames.
    Seg,
    /// Anything else, read as an image.
    Image,
}

/// Returns whether the file starts with the 128-byte preamble and the
/// `DICM` prefix of a DICOM Part 10 file.
pub fn is_dicom_file(path: &Path) -> bool {
    let mut start = [0u8; 132];
    match std::fs::File::open(path) {
        Ok(mut file) => file.read_exact(&mut start).is_ok() && &start[128..] == b"DICM",
        Err(_) => false,
    }
}

/// Returns whether `path` is DICOM input: a folder (read as a series), or
/// a file with the DICM prefix.
pub fn is_dicom_input(path: &Path) -> bool {
    path.is_dir() || is_dicom_file(path)
}

/// Reads the Modality of a DICOM file to tell masks from images.
pub fn kind_of(path: &Path) -> Result<DicomKind, DicomError> {
    let object = open_object(path, true)?;
    let modality = Attributes::new(path).text(&object, tags::MODALITY)?;
    Ok(match modality.as_deref() {
        Some("RTSTRUCT") => DicomKind::RtStruct,
        Some("SEG") => DicomKind::Seg,
        _ => DicomKind::Image,
    })
}

/// Reads an image series; see the module documentation for what `path`
/// may name.
pub fn read_image(path: &Path) -> Result<DicomImage, DicomError> {
    series::read_series(path)
}

/// Lists the files that [`read_image`] reads for `path`, from their
/// headers, without decoding pixels.
pub fn series_files(path: &Path) -> Result<SeriesFiles, DicomError> {
    series::series_files(path)
}
