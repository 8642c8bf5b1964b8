//! NRRD reading (`.nrrd` with attached data, `.nhdr` with one detached data
//! file), after the teem NRRD format definition (NRRD0001 to NRRD0005).
//!
//! Supported: `type` of every signed and unsigned integer width and
//! `float`/`double`; `encoding` `raw`, `gzip` (`gz`) and `ascii` (`text`,
//! `txt`); `endian` `little` and `big`; `dimension` 3, or 4 when one axis
//! has size 1; `space` `left-posterior-superior`,
//! `right-anterior-superior` and `left-anterior-superior` (and their
//! three-letter forms); `space directions`, `space origin`, `spacings` for
//! files without a space; `byte skip` ≥ 0 and `line skip`. Key/value pairs
//! (`key:=value`) and comments are ignored.
//!
//! Conventions:
//!
//! - World frame. [`Geometry`](super::Geometry) is in RAS+ mm, as NIfTI's. A file in LPS
//!   (the frame of ITK, 3D Slicer and the PyRadiomics test data) has its x
//!   and y components negated on reading; LAS has x negated. A grid
//!   therefore compares equal whichever of the two formats stores it.
//! - Axis order. The first axis of `sizes` varies fastest in the data, and
//!   becomes index i of `Volume::data[[i, j, k]]`.
//! - Intensities are the stored values; NRRD has no intensity scaling.
//!
//! Limits that guard against hostile files: the header is at most 1 MiB,
//! the volume at most 2³¹ voxels, and the decoded data must have exactly
//! the size the header announces.

mod decode;
mod header;
mod layout;

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ShapeBuilder};

use super::{PixelType, Volume};
use decode::{ScalarType, decode_values, skip_lines};
use header::{parse_header, split_header};
use layout::Layout;

/// Largest header accepted, in bytes.
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Largest volume accepted, in voxels.
const MAX_VOXELS: usize = 1 << 31;

/// Errors while reading an NRRD file.
#[derive(Debug, thiserror::Error)]
pub enum NrrdError {
    /// The file (or its detached data file) does not exist or cannot be
    /// opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a readable 3-D NRRD volume.
    #[error("invalid NRRD file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problem, with the offending field and value.
        message: String,
    },
}

impl NrrdError {
    /// Returns the message without the path, safe to send off site.
    pub fn shareable_reason(&self) -> String {
        match self {
            NrrdError::Open { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_string(),
                _ => format!("cannot open file: {source}"),
            },
            NrrdError::Invalid { message, .. } => format!("invalid NRRD file: {message}"),
        }
    }
}

/// Reads a 3-D NRRD volume.
pub fn read_volume(path: &Path) -> Result<Volume, NrrdError> {
    Ok(read_image(path)?.0)
}

/// Reads a 3-D NRRD volume and the pixel type SimpleITK gives it: the `type` field's
/// `float` is [`PixelType::Float32`], `double` [`PixelType::Float64`], and every other
/// type an integer, because ITK's NRRD reader applies no intensity scaling.
pub fn read_image(path: &Path) -> Result<(Volume, PixelType), NrrdError> {
    let bytes = std::fs::read(path).map_err(|source| NrrdError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    read_image_from_bytes(&bytes, path)
}

/// Reads a 3-D NRRD volume from its bytes; `path` names the file in errors
/// and locates a detached data file.
pub fn read_volume_from_bytes(bytes: &[u8], path: &Path) -> Result<Volume, NrrdError> {
    Ok(read_image_from_bytes(bytes, path)?.0)
}

/// Reads a 3-D NRRD volume and its pixel type (see [`read_image`]) from its bytes.
fn read_image_from_bytes(bytes: &[u8], path: &Path) -> Result<(Volume, PixelType), NrrdError> {
    let invalid = |message: String| NrrdError::Invalid {
        path: path.to_path_buf(),
        message,
    };

    let (header_text, data_start) = split_header(bytes).map_err(invalid)?;
    let header = parse_header(header_text).map_err(invalid)?;
    let layout = Layout::from_header(&header).map_err(invalid)?;

    let payload: Vec<u8> = match &header.data_file {
        None => bytes[data_start..].to_vec(),
        Some(name) => {
            let data_path = detached_path(path, name).map_err(invalid)?;
            std::fs::read(&data_path).map_err(|source| NrrdError::Open {
                path: data_path,
                source,
            })?
        }
    };
    let payload = skip_lines(&payload, header.line_skip).map_err(invalid)?;

    let values = decode_values(payload, &header, &layout).map_err(invalid)?;
    let [ni, nj, nk] = layout.dims;
    let data = Array3::from_shape_vec((ni, nj, nk).f(), values)
        .map_err(|error| invalid(format!("voxel array does not fit the sizes: {error}")))?;

    let pixel_type = match layout.scalar {
        ScalarType::F32 => PixelType::Float32,
        ScalarType::F64 => PixelType::Float64,
        _ => PixelType::Integer,
    };
    let volume = Volume {
        data,
        geometry: layout.geometry,
        stored_as_integer: layout.scalar.is_integer(),
    };
    Ok((volume, pixel_type))
}

/// Returns the detached data file that the NRRD header at `path` names,
/// resolved as [`read_volume`] resolves it, or `None` when the data follow
/// the header in the same file. Reads only the header.
pub fn detached_data_file(path: &Path) -> Result<Option<PathBuf>, NrrdError> {
    let open_error = |source| NrrdError::Open {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |message: String| NrrdError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(open_error)?;
    // One byte past the limit, so that `split_header` can tell a header
    // that is too long from one that ends at the end of the file.
    let mut bytes = Vec::new();
    file.take(MAX_HEADER_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(open_error)?;
    let (header_text, _) = split_header(&bytes).map_err(invalid)?;
    let header = parse_header(header_text).map_err(invalid)?;
    header
        .data_file
        .map(|name| detached_path(path, &name).map_err(invalid))
        .transpose()
}

/// Resolves a detached data file relative to the header's folder; it must
/// stay in that folder's tree.
fn detached_path(header_path: &Path, name: &str) -> Result<PathBuf, String> {
    if name.starts_with("LIST") || name.contains('%') {
        return Err(format!(
            "data file {name:?} names several files; only one detached data file is supported"
        ));
    }
    let relative = Path::new(name);
    if relative.is_absolute()
        || relative
            .components()
            .any(|part| matches!(part, std::path::Component::ParentDir))
    {
        return Err(format!(
            "data file {name:?} leaves the header's folder; keep it beside the header"
        ));
    }
    let folder = header_path.parent().unwrap_or(Path::new("."));
    Ok(folder.join(relative))
}

#[cfg(test)]
mod tests;
