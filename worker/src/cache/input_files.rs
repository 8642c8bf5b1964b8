//! The files that the image and mask readers open for one manifest path,
//! which the cache key hashes.
//!
//! A path can stand for several files. A DICOM series is every image file
//! of its SeriesInstanceUID in the scanned folder. An NRRD header with a
//! `data file` field (usually `.nhdr`) has its voxels in that file. The
//! list mirrors the readers' own choice of files, through
//! [`crate::image::dicom::series_files`] and
//! [`crate::image::nrrd::detached_data_file`], so that a changed, added or
//! removed slice changes the key.

use std::path::{Path, PathBuf};

use crate::image::dicom::{self, DicomKind};
use crate::image::nrrd;

/// The reader that opens a manifest path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// [`crate::image::read_image`]: a DICOM image, NRRD or NIfTI.
    Image,
    /// [`crate::mask::file::read_mask`]: a DICOM RTSTRUCT or SEG file, or
    /// a label map read like an image.
    Mask,
}

/// The files behind one manifest path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InputFiles {
    /// Format tag hashed into the key: the file name's ending for NIfTI
    /// and NRRD, or the DICOM kind with the SeriesInstanceUID.
    pub(super) format: String,
    /// The resolved files in the order the reader uses them: a DICOM series
    /// in file-path order, an NRRD header before its data file.
    pub(super) files: Vec<PathBuf>,
    /// The folder whose listing decided which files belong to a DICOM
    /// series. Its modification time changes when a file is added or
    /// removed there.
    pub(super) scanned_folder: Option<PathBuf>,
}

/// Lists the files that the reader of `slot` opens for `real`, a
/// canonical path. Returns the reader's error text when the files cannot
/// be chosen, for example for a folder with two series.
pub(super) fn input_files(real: &Path, slot: Slot) -> Result<InputFiles, String> {
    let single = |format: &str| InputFiles {
        format: format.to_string(),
        files: vec![real.to_path_buf()],
        scanned_folder: None,
    };

    if dicom::is_dicom_input(real) {
        // `read_mask` detects RTSTRUCT and SEG files by Modality and reads any
        // other DICOM as a label-map image. `read_image` never checks it.
        if slot == Slot::Mask && dicom::is_dicom_file(real) {
            match dicom::kind_of(real).map_err(|error| error.to_string())? {
                DicomKind::RtStruct => return Ok(single("dicom rtstruct")),
                DicomKind::Seg => return Ok(single("dicom seg")),
                DicomKind::Image => {}
            }
        }
        let series = dicom::series_files(real).map_err(|error| error.to_string())?;
        return Ok(InputFiles {
            format: format!("dicom series {}", series.series_uid),
            files: series.files,
            scanned_folder: series.scanned_folder,
        });
    }

    // The readers pick NRRD or NIfTI by the file name's ending.
    let name = real
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ending = name.split_once('.').map_or("", |(_, ending)| ending);
    if name.ends_with(".nrrd") || name.ends_with(".nhdr") {
        let data = nrrd::detached_data_file(real).map_err(|error| error.to_string())?;
        let mut listed = single(ending);
        listed.files.extend(data);
        return Ok(listed);
    }
    Ok(single(ending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nifti_is_one_file_with_its_ending() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("image.nii.gz");
        std::fs::write(&path, b"not read: only the name decides").expect("file");
        let listed = input_files(&path, Slot::Image).expect("a NIfTI path lists");
        assert_eq!(listed.format, "nii.gz");
        assert_eq!(listed.files, vec![path]);
        assert_eq!(listed.scanned_folder, None);
    }

    #[test]
    fn detached_nrrd_lists_header_then_data() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let header = folder.path().join("image.nhdr");
        std::fs::write(
            &header,
            "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 1\nencoding: raw\ndata file: voxels.raw\n",
        )
        .expect("header");
        let listed = input_files(&header, Slot::Image).expect("the header parses");
        assert_eq!(listed.format, "nhdr");
        assert_eq!(listed.files, vec![header, folder.path().join("voxels.raw")]);
    }

    #[test]
    fn attached_nrrd_is_one_file() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("image.nrrd");
        std::fs::write(
            &path,
            b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 1\nencoding: raw\n\n\x01\x02\x03\x04",
        )
        .expect("file");
        let listed = input_files(&path, Slot::Image).expect("the header parses");
        assert_eq!(listed.files, vec![path]);
    }

    #[test]
    fn nrrd_data_file_leaving_folder_is_error() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let header = folder.path().join("image.nhdr");
        std::fs::write(
            &header,
            "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 1\nencoding: raw\ndata file: ../voxels.raw\n",
        )
        .expect("header");
        let error = input_files(&header, Slot::Image).unwrap_err();
        assert!(error.contains("leaves the header's folder"), "{error}");
    }
}
