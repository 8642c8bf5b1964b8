//! Errors of the DICOM readers, each naming the file and, where one is at
//! fault, the attribute by keyword and tag.

use std::path::PathBuf;

/// Errors while reading DICOM images, RTSTRUCT or SEG files.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The file or folder does not exist or cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid DICOM, or an attribute is missing or invalid.
    #[error("invalid DICOM file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problem, naming the attribute (keyword and tag) and its value.
        message: String,
    },
    /// A folder contains no DICOM image.
    #[error(
        "no DICOM image in {path}: no file starts with the DICM preamble and has Pixel Data (7FE0,0010)"
    )]
    NoImage {
        /// The folder.
        path: PathBuf,
    },
    /// A folder contains images of more than one series.
    #[error(
        "{path} contains {} series (SeriesInstanceUID {}); give the path of one file of the wanted series instead of the folder",
        series.len(),
        series.join(", ")
    )]
    SeveralSeries {
        /// The folder.
        path: PathBuf,
        /// SeriesInstanceUID of each series, sorted.
        series: Vec<String>,
    },
    /// The slices do not form one regular grid.
    #[error("invalid DICOM series at {path}: {message}")]
    Series {
        /// The file where the irregularity shows.
        path: PathBuf,
        /// The irregularity, with the values.
        message: String,
    },
    /// The requested ROI or segment is not in the file.
    #[error("{path}: {kind} {requested} not found; present: {}", present.join("; "))]
    RoiNotFound {
        /// The RTSTRUCT or SEG file.
        path: PathBuf,
        /// `ROI` or `segment`.
        kind: &'static str,
        /// The requested name or number.
        requested: String,
        /// The ROIs or segments in the file, as `number "name"`.
        present: Vec<String>,
    },
    /// The mask is in another frame of reference than the image.
    #[error(
        "{path}: FrameOfReferenceUID (0020,0052) {mask} differs from the image's {image}; the mask was drawn on another scan"
    )]
    FrameOfReference {
        /// The RTSTRUCT or SEG file.
        path: PathBuf,
        /// The mask's frame of reference.
        mask: String,
        /// The image's frame of reference.
        image: String,
    },
    /// The mask does not fit the image grid.
    #[error("{path}: {message}")]
    Placement {
        /// The RTSTRUCT or SEG file.
        path: PathBuf,
        /// The contour or frame that leaves the grid, with positions in mm.
        message: String,
    },
}

impl DicomError {
    /// Returns the message without paths and UIDs, safe to send off site.
    pub fn shareable_reason(&self) -> String {
        match self {
            DicomError::Open { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_string(),
                _ => format!("cannot open file: {source}"),
            },
            DicomError::Invalid { message, .. } => format!("invalid DICOM file: {message}"),
            DicomError::NoImage { .. } => "no DICOM image in the folder".to_string(),
            DicomError::SeveralSeries { series, .. } => format!(
                "the folder contains {} series; name one file of the wanted series",
                series.len()
            ),
            DicomError::Series { message, .. } => format!("invalid DICOM series: {message}"),
            DicomError::RoiNotFound {
                kind,
                requested,
                present,
                ..
            } => format!(
                "{kind} {requested} not found; present: {}",
                present.join("; ")
            ),
            DicomError::FrameOfReference { .. } => {
                "the mask's FrameOfReferenceUID differs from the image's".to_string()
            }
            DicomError::Placement { message, .. } => message.clone(),
        }
    }

    /// Returns whether the file could not be opened, as opposed to being
    /// opened and found invalid.
    pub fn is_missing(&self) -> bool {
        matches!(self, DicomError::Open { .. })
    }
}
