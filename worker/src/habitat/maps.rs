//! Habitat label maps on disk: a NIfTI-1 label volume on the image's grid
//! and a JSON sidecar that names the labels.
//!
//! Files, in the output directory, for pseudonym P and sequence Q:
//!
//! - `P_Q_habitats.nii.gz`: gzip-compressed NIfTI-1, uint8, one label per
//!   voxel (0 outside the lesion, 1..=K habitats), written by the `nifti`
//!   crate (0.17). Its sform and qform both hold the image's index-to-world
//!   map, so the file overlays the source image in ITK-SNAP or 3D Slicer.
//!   The header has `intent_code` = 1002 (NIFTI_INTENT_LABEL), units mm
//!   (`xyzt_units` = 2), `cal_min` = 0 and `cal_max` = K.
//! - `P_Q_habitats.json`: a [`HabitatMapSidecar`] with each label's number,
//!   region name, voxel count, volume and overlay colour.
//!
//! Each file is written to a temporary name in the same directory, synced,
//! and renamed over the final name, so a reader sees either the old file
//! or the complete new one. The two files are renamed one after the other,
//! not together.
//!
//! The NIfTI header stores the transform in float32, so the geometry read
//! back differs from the one written by the float32 rounding of each
//! value: about 1e-5 mm for an origin of 100 mm, none for a geometry that
//! was itself read from a NIfTI file.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::Array3;
use nifti::NiftiHeader;
use nifti::writer::WriterOptions;
use serde::{Deserialize, Serialize};

use super::grid::{GeometryProblem, check_geometry, determinant};
use super::overlay::habitat_colour;
use crate::image::Geometry;

/// NIFTI_INTENT_LABEL: each voxel value is an index into a set of labels.
const NIFTI_INTENT_LABEL: i16 = 1002;
/// NIFTI_UNITS_MM in the spatial bits of `xyzt_units`.
const NIFTI_UNITS_MM: u8 = 2;
/// NIFTI_XFORM_SCANNER_ANAT: the transform gives scanner-based anatomical
/// coordinates, the code most scanners' converters write.
const NIFTI_XFORM_SCANNER_ANAT: i16 = 1;
/// NIfTI-1 stores `dim` as signed 16-bit values.
const MAX_NIFTI_DIM: usize = i16::MAX as usize;
/// Largest deviation of DᵀD from the identity for which the direction
/// matrix counts as a rotation (possibly with a flip) that a qform can
/// hold. Directions read from float32 headers deviate by about 1e-7.
const ORTHONORMAL_TOLERANCE: f64 = 1e-4;

/// An error while writing a habitat map or its overlay.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// A pseudonym or sequence name cannot be part of a file name.
    #[error(
        "{field} {value:?} cannot be used in a file name; use letters, digits, '-', '_' \
         and '.', not starting with '.'"
    )]
    InvalidName {
        /// "pseudonym" or "sequence".
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The grid is unusable.
    #[error("invalid grid for {what}: {problem}")]
    InvalidGeometry {
        /// The map being written.
        what: String,
        /// The problem with the grid.
        problem: GeometryProblem,
    },
    /// The label map does not have the grid's (or image's) shape.
    #[error(
        "label map for {what} has shape {found:?} but the image grid has dims \
         {expected:?}; pass labels computed on the image's own grid"
    )]
    ShapeMismatch {
        /// The map being written.
        what: String,
        /// The grid's dims.
        expected: [usize; 3],
        /// The label map's shape.
        found: [usize; 3],
    },
    /// The grid has more voxels along an axis than NIfTI-1 can store.
    #[error("grid dims {dims:?} for {what} exceed the NIfTI-1 limit of {MAX_NIFTI_DIM} per axis")]
    TooLarge {
        /// The map being written.
        what: String,
        /// The grid's dims.
        dims: [usize; 3],
    },
    /// A label in the map has no region name.
    #[error(
        "label {label} in the map for {what} has no region name ({names} names given, \
         for labels 1 to {names}); pass one name per habitat"
    )]
    UnnamedLabel {
        /// The map being written.
        what: String,
        /// The label without a name.
        label: u8,
        /// How many names were given.
        names: usize,
    },
    /// The map has more habitats than a u8 label can number.
    #[error("{names} region names given for {what}; at most 255 habitats fit in a uint8 map")]
    TooManyNames {
        /// The map being written.
        what: String,
        /// How many names were given.
        names: usize,
    },
    /// There is no labelled voxel to draw.
    #[error("the label map for {what} has no labelled voxel, so there is no lesion to show")]
    EmptyLesion {
        /// The map being drawn.
        what: String,
    },
    /// No lesion voxel has a finite intensity to set the grey window.
    #[error(
        "no lesion voxel of {what} has a finite intensity; check the image for NaN or \
         infinite values"
    )]
    NoFiniteIntensity {
        /// The map being drawn.
        what: String,
    },
    /// Writing or renaming a file failed.
    #[error("failed to write {path}: {source}; check that the directory exists and is writable")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The NIfTI writer failed.
    #[error("failed to write NIfTI file {path}: {message}")]
    Nifti {
        /// The file.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// The PNG encoder failed.
    #[error("failed to encode PNG file {path}: {message}")]
    Png {
        /// The file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
}

/// The JSON sidecar of a habitat label map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HabitatMapSidecar {
    /// Patient pseudonym.
    pub pseudonym: String,
    /// Sequence whose grid the map is on.
    pub sequence: String,
    /// File name of the label map, in the same directory.
    pub label_map: String,
    /// Voxels along i, j and k.
    pub dims: [usize; 3],
    /// Voxel size along i, j and k, in mm.
    pub spacing_mm: [f64; 3],
    /// One entry per habitat, labels 1 to K in order.
    pub labels: Vec<LabelEntry>,
    /// Voxels with label 0, outside the lesion.
    pub background_voxels: usize,
}

/// One habitat of a label map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEntry {
    /// Voxel value in the label map, 1 to K.
    pub value: u8,
    /// Region name, such as "inner" or "marginal".
    pub name: String,
    /// Voxels with this label.
    pub voxels: usize,
    /// Their volume, in mm³.
    pub volume_mm3: f64,
    /// Colour of the habitat in the overlay PNG, as `#RRGGBB`.
    pub colour: String,
}

/// Returns the label map's file name, `<pseudonym>_<sequence>_habitats.nii.gz`.
pub fn label_map_file_name(pseudonym: &str, sequence: &str) -> String {
    format!("{pseudonym}_{sequence}_habitats.nii.gz")
}

/// Returns the sidecar's file name, `<pseudonym>_<sequence>_habitats.json`.
pub fn sidecar_file_name(pseudonym: &str, sequence: &str) -> String {
    format!("{pseudonym}_{sequence}_habitats.json")
}

/// Writes a habitat label map on the image grid `geometry` as NIfTI-1
/// with its JSON sidecar, and returns the label map's path.
///
/// `labels` has the grid's dims, 0 outside the lesion and 1..=K inside;
/// `names[L − 1]` names label L. Names beyond the largest label are listed
/// in the sidecar with 0 voxels.
pub fn write_habitat_map(
    dir: &Path,
    pseudonym: &str,
    sequence: &str,
    labels: &Array3<u8>,
    geometry: &Geometry,
    names: &[String],
) -> Result<PathBuf, MapError> {
    check_file_name_part("pseudonym", pseudonym)?;
    check_file_name_part("sequence", sequence)?;
    let what = format!("{pseudonym} {sequence}");
    let _span = tracing::debug_span!("write_habitat_map", patient = pseudonym, sequence).entered();

    check_geometry(geometry).map_err(|problem| MapError::InvalidGeometry {
        what: what.clone(),
        problem,
    })?;
    let shape = {
        let (a, b, c) = labels.dim();
        [a, b, c]
    };
    if shape != geometry.dims {
        return Err(MapError::ShapeMismatch {
            what,
            expected: geometry.dims,
            found: shape,
        });
    }
    if geometry.dims.iter().any(|&d| d > MAX_NIFTI_DIM) {
        return Err(MapError::TooLarge {
            what,
            dims: geometry.dims,
        });
    }
    let counts = label_counts(labels, names, &what)?;

    let header = label_map_header(geometry, names.len(), &what);
    let map_name = label_map_file_name(pseudonym, sequence);
    let map_path = dir.join(&map_name);
    write_atomically(&map_path, |temporary| {
        WriterOptions::new(temporary)
            .reference_header(&header)
            .write_nifti(labels)
            .map_err(|error| match error {
                nifti::NiftiError::Io(source) => MapError::Io {
                    path: temporary.to_path_buf(),
                    source,
                },
                other => MapError::Nifti {
                    path: map_path.clone(),
                    message: other.to_string(),
                },
            })
    })?;

    let voxel_volume = geometry.voxel_volume_mm3();
    let sidecar = HabitatMapSidecar {
        pseudonym: pseudonym.to_string(),
        sequence: sequence.to_string(),
        label_map: map_name,
        dims: geometry.dims,
        spacing_mm: geometry.spacing,
        labels: names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let value = (index + 1) as u8;
                let voxels = counts[value as usize];
                let [red, green, blue] = habitat_colour(value);
                LabelEntry {
                    value,
                    name: name.clone(),
                    voxels,
                    volume_mm3: voxels as f64 * voxel_volume,
                    colour: format!("#{red:02X}{green:02X}{blue:02X}"),
                }
            })
            .collect(),
        background_voxels: counts[0],
    };
    let sidecar_path = dir.join(sidecar_file_name(pseudonym, sequence));
    let json = serde_json::to_vec_pretty(&sidecar).map_err(|error| MapError::Io {
        path: sidecar_path.clone(),
        source: std::io::Error::other(error),
    })?;
    write_atomically(&sidecar_path, |temporary| {
        std::fs::write(temporary, &json).map_err(|source| MapError::Io {
            path: temporary.to_path_buf(),
            source,
        })
    })?;

    tracing::debug!(
        patient = pseudonym,
        sequence,
        habitats = names.len(),
        "habitat map written"
    );
    Ok(map_path)
}

/// Rejects names that could escape the directory or hide the file.
fn check_file_name_part(field: &'static str, value: &str) -> Result<(), MapError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if value.is_empty() || value.starts_with('.') || !value.chars().all(allowed) {
        return Err(MapError::InvalidName {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Counts the voxels of each label value, and checks that every label
/// present has a name.
fn label_counts(
    labels: &Array3<u8>,
    names: &[String],
    what: &str,
) -> Result<[usize; 256], MapError> {
    if names.len() > u8::MAX as usize {
        return Err(MapError::TooManyNames {
            what: what.to_string(),
            names: names.len(),
        });
    }
    let mut counts = [0usize; 256];
    for &label in labels {
        counts[label as usize] += 1;
    }
    if let Some(label) = (names.len() + 1..256).find(|&label| counts[label] > 0) {
        return Err(MapError::UnnamedLabel {
            what: what.to_string(),
            label: label as u8,
            names: names.len(),
        });
    }
    Ok(counts)
}

/// Builds the NIfTI-1 header of a label map on `geometry`: sform and qform
/// from the index-to-world map, uint8 labels 0..=K, mm units.
fn label_map_header(geometry: &Geometry, habitats: usize, what: &str) -> NiftiHeader {
    let mut header = NiftiHeader {
        intent_code: NIFTI_INTENT_LABEL,
        xyzt_units: NIFTI_UNITS_MM,
        cal_min: 0.0,
        cal_max: habitats as f32,
        sform_code: NIFTI_XFORM_SCANNER_ANAT,
        ..NiftiHeader::default()
    };
    header.intent_name[..8].copy_from_slice(b"habitats");
    header.descrip = b"radstudy habitat labels".to_vec();

    // sform: row r = (D[r][0]·s0, D[r][1]·s1, D[r][2]·s2, origin[r]).
    let row = |r: usize| {
        [
            (geometry.direction[r][0] * geometry.spacing[0]) as f32,
            (geometry.direction[r][1] * geometry.spacing[1]) as f32,
            (geometry.direction[r][2] * geometry.spacing[2]) as f32,
            geometry.origin[r] as f32,
        ]
    };
    header.srow_x = row(0);
    header.srow_y = row(1);
    header.srow_z = row(2);

    // qform: pixdim[0] = qfac = ±1 flips the k axis so that the rest is a
    // proper rotation, stored as the quaternion's (b, c, d).
    let qfac = if determinant(&geometry.direction) < 0.0 {
        -1.0
    } else {
        1.0
    };
    let rotation: [[f64; 3]; 3] = std::array::from_fn(|r| {
        [
            geometry.direction[r][0],
            geometry.direction[r][1],
            geometry.direction[r][2] * qfac,
        ]
    });
    header.pixdim = [
        qfac as f32,
        geometry.spacing[0] as f32,
        geometry.spacing[1] as f32,
        geometry.spacing[2] as f32,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    header.quatern_x = geometry.origin[0] as f32;
    header.quatern_y = geometry.origin[1] as f32;
    header.quatern_z = geometry.origin[2] as f32;
    if is_orthonormal(&rotation) {
        let [_, b, c, d] = rotation_to_quaternion(&rotation);
        header.quatern_b = b as f32;
        header.quatern_c = c as f32;
        header.quatern_d = d as f32;
        header.qform_code = NIFTI_XFORM_SCANNER_ANAT;
    } else {
        // A sheared grid has no rotation to store, so readers fall back to
        // the sform, which stores it exactly.
        tracing::warn!(
            map = what,
            direction = ?geometry.direction,
            "direction axes are not orthogonal, so the label map has an sform but no qform"
        );
        header.qform_code = 0;
    }
    header
}

fn is_orthonormal(rotation: &[[f64; 3]; 3]) -> bool {
    (0..3).all(|a| {
        (0..3).all(|b| {
            let dot: f64 = (0..3).map(|r| rotation[r][a] * rotation[r][b]).sum();
            let expected = if a == b { 1.0 } else { 0.0 };
            (dot - expected).abs() <= ORTHONORMAL_TOLERANCE
        })
    })
}

/// Converts a proper rotation matrix to the unit quaternion (a, b, c, d)
/// with a ≥ 0, the form NIfTI-1 stores (a is implied). It inverts
/// R[0][1] = 2(bc − ad), R[1][0] = 2(bc + ad), and so on, through the
/// largest of a, b, c, d, which keeps the division well conditioned.
fn rotation_to_quaternion(r: &[[f64; 3]; 3]) -> [f64; 4] {
    let trace = r[0][0] + r[1][1] + r[2][2];
    let quaternion = if trace > 0.0 {
        let a = 0.5 * (1.0 + trace).sqrt();
        [
            a,
            (r[2][1] - r[1][2]) / (4.0 * a),
            (r[0][2] - r[2][0]) / (4.0 * a),
            (r[1][0] - r[0][1]) / (4.0 * a),
        ]
    } else if r[0][0] >= r[1][1] && r[0][0] >= r[2][2] {
        let b = 0.5 * (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt();
        [
            (r[2][1] - r[1][2]) / (4.0 * b),
            b,
            (r[0][1] + r[1][0]) / (4.0 * b),
            (r[0][2] + r[2][0]) / (4.0 * b),
        ]
    } else if r[1][1] >= r[2][2] {
        let c = 0.5 * (1.0 - r[0][0] + r[1][1] - r[2][2]).sqrt();
        [
            (r[0][2] - r[2][0]) / (4.0 * c),
            (r[0][1] + r[1][0]) / (4.0 * c),
            c,
            (r[1][2] + r[2][1]) / (4.0 * c),
        ]
    } else {
        let d = 0.5 * (1.0 - r[0][0] - r[1][1] + r[2][2]).sqrt();
        [
            (r[1][0] - r[0][1]) / (4.0 * d),
            (r[0][2] + r[2][0]) / (4.0 * d),
            (r[1][2] + r[2][1]) / (4.0 * d),
            d,
        ]
    };
    // q and −q are the same rotation; NIfTI-1 wants a ≥ 0.
    if quaternion[0] < 0.0 {
        quaternion.map(|value| -value)
    } else {
        quaternion
    }
}

/// Serial number of the next temporary file of this process.
static TEMPORARY_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes a file through `write` under a temporary name in the same
/// directory, syncs it, renames it to `path` and syncs the directory.
pub(super) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), MapError>,
) -> Result<(), MapError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MapError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| MapError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
        })?;
    // The temporary name keeps the final extension (the NIfTI writer picks
    // compression from it) and starts with '.' so that listings skip it.
    // The process id and a counter keep concurrent writers apart.
    let extension = if file_name.ends_with(".nii.gz") {
        ".nii.gz".to_string()
    } else {
        path.extension()
            .map(|extension| format!(".{}", extension.to_string_lossy()))
            .unwrap_or_default()
    };
    let serial = TEMPORARY_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(
        ".{file_name}.tmp-{}-{serial}{extension}",
        std::process::id()
    ));

    let result = write(&temporary).and_then(|()| {
        File::open(&temporary)
            .and_then(|file| file.sync_all())
            .map_err(io_error(&temporary))?;
        std::fs::rename(&temporary, path).map_err(io_error(path))?;
        File::open(dir)
            .and_then(|directory| directory.sync_all())
            .map_err(io_error(dir))
    });
    if result.is_err() {
        // The write already failed; a leftover temporary file is harmless
        // and the original error is the one to report.
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests;
