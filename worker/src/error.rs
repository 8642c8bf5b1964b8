//! Why a patient is excluded, in a form that can cross the site boundary.
//!
//! An [`Exclusion`]'s reason may leave the site, so it never contains a file
//! path or a local patient id (paths usually name the patient). The worker's
//! log identifies the file by manifest line and field instead.

use radstudy_proto::v1::ErrorKind;

/// The category of an exclusion, mirrored one to one by the contract's
/// `ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionKind {
    /// A listed file does not exist or cannot be read.
    FileMissing,
    /// A file exists but is not a valid image of a supported format.
    FileInvalid,
    /// Image and mask grids do not match within tolerance.
    GeometryMismatch,
    /// The mask is empty, non-integer, or lacks the requested label.
    MaskInvalid,
    /// The region of interest is too small for the requested features.
    RoiTooSmall,
    /// The region contains NaN or infinite intensities.
    IntensityInvalid,
    /// The manifest row has no image or mask for this sequence.
    NotListed,
    /// The manifest row is invalid: a bad label, a duplicated id, a ragged
    /// row, or a path outside the data root.
    ManifestInvalid,
}

impl ExclusionKind {
    /// Returns the contract's code for this kind.
    pub fn to_proto(self) -> ErrorKind {
        match self {
            ExclusionKind::FileMissing => ErrorKind::FileMissing,
            ExclusionKind::FileInvalid => ErrorKind::FileInvalid,
            ExclusionKind::GeometryMismatch => ErrorKind::GeometryMismatch,
            ExclusionKind::MaskInvalid => ErrorKind::MaskInvalid,
            ExclusionKind::RoiTooSmall => ErrorKind::RoiTooSmall,
            ExclusionKind::IntensityInvalid => ErrorKind::IntensityInvalid,
            ExclusionKind::NotListed => ErrorKind::NotListed,
            ExclusionKind::ManifestInvalid => ErrorKind::ManifestInvalid,
        }
    }

    /// Returns the kind for a contract code; `None` for an unspecified or
    /// unknown code.
    pub fn from_proto(kind: ErrorKind) -> Option<Self> {
        match kind {
            ErrorKind::Unspecified => None,
            ErrorKind::FileMissing => Some(ExclusionKind::FileMissing),
            ErrorKind::FileInvalid => Some(ExclusionKind::FileInvalid),
            ErrorKind::GeometryMismatch => Some(ExclusionKind::GeometryMismatch),
            ErrorKind::MaskInvalid => Some(ExclusionKind::MaskInvalid),
            ErrorKind::RoiTooSmall => Some(ExclusionKind::RoiTooSmall),
            ErrorKind::IntensityInvalid => Some(ExclusionKind::IntensityInvalid),
            ErrorKind::NotListed => Some(ExclusionKind::NotListed),
            ErrorKind::ManifestInvalid => Some(ExclusionKind::ManifestInvalid),
        }
    }

    /// Returns the snake_case name used in tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionKind::FileMissing => "file_missing",
            ExclusionKind::FileInvalid => "file_invalid",
            ExclusionKind::GeometryMismatch => "geometry_mismatch",
            ExclusionKind::MaskInvalid => "mask_invalid",
            ExclusionKind::RoiTooSmall => "roi_too_small",
            ExclusionKind::IntensityInvalid => "intensity_invalid",
            ExclusionKind::NotListed => "not_listed",
            ExclusionKind::ManifestInvalid => "manifest_invalid",
        }
    }
}

/// Exclusion of one patient's sequence, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Exclusion {
    /// Category of the failure.
    pub kind: ExclusionKind,
    /// Manifest field that the failure concerns, for example `MR_T1_image`.
    pub field: String,
    /// Shareable reason: no path and no local patient id.
    pub reason: String,
}

impl Exclusion {
    /// Creates an exclusion.
    pub fn new(kind: ExclusionKind, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Exclusion {
            kind,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [ExclusionKind; 8] = [
        ExclusionKind::FileMissing,
        ExclusionKind::FileInvalid,
        ExclusionKind::GeometryMismatch,
        ExclusionKind::MaskInvalid,
        ExclusionKind::RoiTooSmall,
        ExclusionKind::IntensityInvalid,
        ExclusionKind::NotListed,
        ExclusionKind::ManifestInvalid,
    ];

    #[test]
    fn exclusion_kind_round_trips_through_proto() {
        for kind in ALL_KINDS {
            assert_eq!(ExclusionKind::from_proto(kind.to_proto()), Some(kind));
        }
    }
}
