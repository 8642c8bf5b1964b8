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
//! - World frame. [`Geometry`] is in RAS+ mm, as NIfTI's. A file in LPS
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

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use ndarray::{Array3, ShapeBuilder};

use super::{Geometry, PixelType, Volume};

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

/// Voxel type of the `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalarType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl ScalarType {
    /// Parses the `type` field, with every spelling the format allows.
    fn parse(text: &str) -> Option<ScalarType> {
        let scalar = match text {
            "signed char" | "int8" | "int8_t" => ScalarType::I8,
            "uchar" | "unsigned char" | "uint8" | "uint8_t" => ScalarType::U8,
            "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
                ScalarType::I16
            }
            "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => {
                ScalarType::U16
            }
            "int" | "signed int" | "int32" | "int32_t" => ScalarType::I32,
            "uint" | "unsigned int" | "uint32" | "uint32_t" => ScalarType::U32,
            "longlong"
            | "long long"
            | "long long int"
            | "signed long long"
            | "signed long long int"
            | "int64"
            | "int64_t" => ScalarType::I64,
            "ulonglong"
            | "unsigned long long"
            | "unsigned long long int"
            | "uint64"
            | "uint64_t" => ScalarType::U64,
            "float" => ScalarType::F32,
            "double" => ScalarType::F64,
            _ => return None,
        };
        Some(scalar)
    }

    fn byte_width(self) -> usize {
        match self {
            ScalarType::I8 | ScalarType::U8 => 1,
            ScalarType::I16 | ScalarType::U16 => 2,
            ScalarType::I32 | ScalarType::U32 | ScalarType::F32 => 4,
            ScalarType::I64 | ScalarType::U64 | ScalarType::F64 => 8,
        }
    }

    fn is_integer(self) -> bool {
        !matches!(self, ScalarType::F32 | ScalarType::F64)
    }

    /// Decodes one value from exactly `byte_width` bytes.
    fn decode(self, bytes: &[u8], big_endian: bool) -> f64 {
        let mut buffer = [0u8; 8];
        let width = self.byte_width();
        buffer[..width].copy_from_slice(&bytes[..width]);
        if big_endian {
            buffer[..width].reverse();
        }
        match self {
            ScalarType::I8 => buffer[0] as i8 as f64,
            ScalarType::U8 => buffer[0] as f64,
            ScalarType::I16 => i16::from_le_bytes([buffer[0], buffer[1]]) as f64,
            ScalarType::U16 => u16::from_le_bytes([buffer[0], buffer[1]]) as f64,
            ScalarType::I32 => {
                i32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as f64
            }
            ScalarType::U32 => {
                u32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as f64
            }
            ScalarType::I64 => i64::from_le_bytes(buffer) as f64,
            ScalarType::U64 => u64::from_le_bytes(buffer) as f64,
            ScalarType::F32 => {
                f32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as f64
            }
            ScalarType::F64 => f64::from_le_bytes(buffer),
        }
    }
}

/// Data encoding of the `encoding` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Raw,
    Gzip,
    Ascii,
}

/// The header fields this reader uses.
#[derive(Debug, Default)]
struct Header {
    scalar: Option<ScalarType>,
    dimension: Option<usize>,
    sizes: Vec<usize>,
    encoding: Option<Encoding>,
    big_endian: Option<bool>,
    /// Sign of the world x and y axes relative to RAS, from `space`.
    frame_sign: Option<[f64; 3]>,
    space_directions: Option<Vec<Option<[f64; 3]>>>,
    space_origin: Option<[f64; 3]>,
    spacings: Option<Vec<f64>>,
    data_file: Option<String>,
    line_skip: usize,
    byte_skip: usize,
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

/// Splits the header (without the magic line) from the data; the header
/// ends at the first empty line.
fn split_header(bytes: &[u8]) -> Result<(&str, usize), String> {
    if !bytes.starts_with(b"NRRD000") {
        return Err("the file does not start with the NRRD magic \"NRRD000X\"".into());
    }
    let limit = bytes.len().min(MAX_HEADER_BYTES);
    let mut line_start = 0;
    let mut position = 0;
    while position < limit {
        if bytes[position] == b'\n' {
            let line = &bytes[line_start..position];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                let text = std::str::from_utf8(&bytes[..line_start])
                    .map_err(|_| "the header is not valid UTF-8 text".to_string())?;
                return Ok((text, position + 1));
            }
            line_start = position + 1;
        }
        position += 1;
    }
    if bytes.len() > MAX_HEADER_BYTES {
        return Err(format!(
            "no end of header within the first {MAX_HEADER_BYTES} bytes"
        ));
    }
    // A detached header may end at the end of the file without a blank line.
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the header is not valid UTF-8 text".to_string())?;
    Ok((text, bytes.len()))
}

/// Parses the header lines into [`Header`].
fn parse_header(text: &str) -> Result<Header, String> {
    let mut header = Header::default();
    for (number, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim_end_matches('\r');
        if number == 0 || line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.contains(":=") && !line.contains(": ") {
            continue;
        }
        let Some((field, value)) = line.split_once(": ") else {
            return Err(format!(
                "header line {} is not \"field: value\": {line:?}",
                number + 1
            ));
        };
        let value = value.trim();
        match field.trim() {
            "type" => {
                header.scalar = Some(ScalarType::parse(value).ok_or_else(|| {
                    format!("unsupported type {value:?}; expected an integer type, float or double")
                })?)
            }
            "dimension" => header.dimension = Some(parse_count("dimension", value)?),
            "sizes" => {
                header.sizes = value
                    .split_whitespace()
                    .map(|size| parse_count("sizes", size))
                    .collect::<Result<_, _>>()?
            }
            "encoding" => {
                header.encoding = Some(match value {
                    "raw" => Encoding::Raw,
                    "gzip" | "gz" => Encoding::Gzip,
                    "ascii" | "text" | "txt" => Encoding::Ascii,
                    other => {
                        return Err(format!(
                            "unsupported encoding {other:?}; re-save the file with raw or gzip encoding"
                        ));
                    }
                })
            }
            "endian" => {
                header.big_endian = Some(match value {
                    "little" => false,
                    "big" => true,
                    other => {
                        return Err(format!("invalid endian {other:?}; expected little or big"));
                    }
                })
            }
            "space" => header.frame_sign = Some(frame_sign(value)?),
            "space dimension" => {
                if parse_count("space dimension", value)? != 3 {
                    return Err(format!("space dimension {value} is not 3"));
                }
            }
            "space directions" => header.space_directions = Some(parse_directions(value)?),
            "space origin" => header.space_origin = Some(parse_vector("space origin", value)?),
            "spacings" => {
                header.spacings = Some(
                    value
                        .split_whitespace()
                        .map(|item| {
                            if item == "nan" || item == "NaN" {
                                Ok(f64::NAN)
                            } else {
                                parse_float("spacings", item)
                            }
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            "data file" | "datafile" => header.data_file = Some(value.to_string()),
            "line skip" | "lineskip" => header.line_skip = parse_count("line skip", value)?,
            "byte skip" | "byteskip" => {
                if value == "-1" {
                    return Err(
                        "byte skip -1 (data at the end of the file) is not supported; re-save the file"
                            .into(),
                    );
                }
                header.byte_skip = parse_count("byte skip", value)?;
            }
            // Fields that do not change the voxel values or their placement.
            _ => {}
        }
    }
    Ok(header)
}

/// The decoded shape, type and geometry of a header.
struct Layout {
    scalar: ScalarType,
    dims: [usize; 3],
    /// Position of each of the three spatial axes in `sizes`.
    voxels: usize,
    geometry: Geometry,
}

impl Layout {
    fn from_header(header: &Header) -> Result<Layout, String> {
        let scalar = header
            .scalar
            .ok_or("the required field \"type\" is missing")?;
        let dimension = header
            .dimension
            .ok_or("the required field \"dimension\" is missing")?;
        if header.sizes.len() != dimension {
            return Err(format!(
                "sizes lists {} axes but dimension is {dimension}",
                header.sizes.len()
            ));
        }
        header
            .encoding
            .ok_or("the required field \"encoding\" is missing")?;
        if header.big_endian.is_none()
            && scalar.byte_width() > 1
            && header.encoding != Some(Encoding::Ascii)
        {
            return Err("the field \"endian\" is missing for a multi-byte type".into());
        }

        // A 4-D file counts as 3-D when one axis has size 1 (a single
        // component or time point); that axis is dropped.
        let spatial: Vec<usize> = match dimension {
            3 => vec![0, 1, 2],
            4 => {
                let singleton =
                    header
                        .sizes
                        .iter()
                        .position(|&size| size == 1)
                        .ok_or_else(|| {
                            format!(
                                "expected a 3-D volume, found 4 axes of sizes {:?}",
                                header.sizes
                            )
                        })?;
                (0..4).filter(|&axis| axis != singleton).collect()
            }
            _ => {
                return Err(format!(
                    "expected a 3-D volume, found dimension {dimension}"
                ));
            }
        };
        let dims = [
            header.sizes[spatial[0]],
            header.sizes[spatial[1]],
            header.sizes[spatial[2]],
        ];
        if dims.contains(&0) {
            return Err(format!("sizes {:?} contain a zero", header.sizes));
        }
        let voxels = dims
            .iter()
            .try_fold(1usize, |product, &size| product.checked_mul(size))
            .filter(|&count| count <= MAX_VOXELS)
            .ok_or_else(|| {
                format!(
                    "sizes {:?} exceed the limit of {MAX_VOXELS} voxels",
                    header.sizes
                )
            })?;

        let geometry = geometry(header, &spatial, dims)?;
        Ok(Layout {
            scalar,
            dims,
            voxels,
            geometry,
        })
    }
}

/// Builds the RAS+ geometry from `space directions` and `space origin`, or
/// from `spacings` in a file without a space.
fn geometry(header: &Header, spatial: &[usize], dims: [usize; 3]) -> Result<Geometry, String> {
    let sign = header.frame_sign.unwrap_or([1.0; 3]);
    let mut columns = [[0.0; 3]; 3];
    match (&header.space_directions, &header.spacings) {
        (Some(directions), _) => {
            if directions.len() != header.sizes.len() {
                return Err(format!(
                    "space directions lists {} axes but sizes lists {}",
                    directions.len(),
                    header.sizes.len()
                ));
            }
            for (c, &axis) in spatial.iter().enumerate() {
                let vector = directions[axis].ok_or_else(|| {
                    format!("space directions gives \"none\" for spatial axis {axis}")
                })?;
                columns[c] = std::array::from_fn(|r| vector[r] * sign[r]);
            }
        }
        (None, Some(spacings)) => {
            if spacings.len() != header.sizes.len() {
                return Err(format!(
                    "spacings lists {} axes but sizes lists {}",
                    spacings.len(),
                    header.sizes.len()
                ));
            }
            for (c, &axis) in spatial.iter().enumerate() {
                columns[c][c] = spacings[axis];
            }
        }
        (None, None) => {
            return Err("neither \"space directions\" nor \"spacings\" is given, so the voxel size is unknown".into());
        }
    }
    let origin = header.space_origin.unwrap_or([0.0; 3]);
    let origin: [f64; 3] = std::array::from_fn(|r| origin[r] * sign[r]);

    Geometry::from_axis_columns(dims, origin, columns)
}

/// Returns the sign that turns each world component of `space` into RAS.
fn frame_sign(space: &str) -> Result<[f64; 3], String> {
    match space {
        "right-anterior-superior" | "RAS" => Ok([1.0, 1.0, 1.0]),
        "left-anterior-superior" | "LAS" => Ok([-1.0, 1.0, 1.0]),
        "left-posterior-superior" | "LPS" => Ok([-1.0, -1.0, 1.0]),
        other => Err(format!(
            "unsupported space {other:?}; expected left-posterior-superior, right-anterior-superior or left-anterior-superior"
        )),
    }
}

/// Parses `(x,y,z) (x,y,z) none ...`.
fn parse_directions(value: &str) -> Result<Vec<Option<[f64; 3]>>, String> {
    let mut directions = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("none") {
            directions.push(None);
            rest = after.trim_start();
            continue;
        }
        let end = rest
            .find(')')
            .ok_or_else(|| format!("space directions {value:?} has an unclosed vector"))?;
        directions.push(Some(parse_vector("space directions", &rest[..=end])?));
        rest = rest[end + 1..].trim_start();
    }
    Ok(directions)
}

/// Parses `(x,y,z)`.
fn parse_vector(field: &str, text: &str) -> Result<[f64; 3], String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("{field} {text:?} is not a vector \"(x,y,z)\""))?;
    let parts: Vec<&str> = inner.split(',').collect();
    if parts.len() != 3 {
        return Err(format!(
            "{field} {text:?} has {} components, expected 3",
            parts.len()
        ));
    }
    let mut vector = [0.0; 3];
    for (slot, part) in vector.iter_mut().zip(parts) {
        *slot = parse_float(field, part.trim())?;
    }
    Ok(vector)
}

fn parse_float(field: &str, text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|_| format!("{field} value {text:?} is not a number"))
}

fn parse_count(field: &str, text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("{field} value {text:?} is not a non-negative integer"))
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

/// Drops the first `lines` lines of the data.
fn skip_lines(payload: &[u8], lines: usize) -> Result<&[u8], String> {
    let mut rest = payload;
    for skipped in 0..lines {
        let end = rest.iter().position(|&byte| byte == b'\n').ok_or_else(|| {
            format!("line skip {lines} passes the end of the data after {skipped} lines")
        })?;
        rest = &rest[end + 1..];
    }
    Ok(rest)
}

/// Decodes the voxel values in file order.
fn decode_values(payload: &[u8], header: &Header, layout: &Layout) -> Result<Vec<f64>, String> {
    let scalar = layout.scalar;
    let expected_bytes = layout.voxels * scalar.byte_width();
    match header.encoding {
        Some(Encoding::Ascii) => decode_ascii(payload, layout.voxels),
        Some(Encoding::Raw) => {
            let data = payload.get(header.byte_skip..).ok_or_else(|| {
                format!("byte skip {} passes the end of the data", header.byte_skip)
            })?;
            decode_binary(
                data,
                expected_bytes,
                scalar,
                header.big_endian.unwrap_or(false),
            )
        }
        Some(Encoding::Gzip) => {
            let mut decoder = MultiGzDecoder::new(payload);
            // Read one byte past the expected size to detect extra data.
            let wanted = header.byte_skip + expected_bytes;
            let mut data = Vec::with_capacity(wanted.min(64 << 20));
            decoder
                .by_ref()
                .take(wanted as u64 + 1)
                .read_to_end(&mut data)
                .map_err(|error| match error.kind() {
                    std::io::ErrorKind::UnexpectedEof => format!(
                        "the gzip data is truncated ({error}); copy the file again from its source"
                    ),
                    _ => format!("the gzip data cannot be decoded: {error}"),
                })?;
            let data = data.get(header.byte_skip..).ok_or_else(|| {
                format!("byte skip {} passes the end of the data", header.byte_skip)
            })?;
            decode_binary(
                data,
                expected_bytes,
                scalar,
                header.big_endian.unwrap_or(false),
            )
        }
        None => Err("the required field \"encoding\" is missing".into()),
    }
}

fn decode_binary(
    data: &[u8],
    expected: usize,
    scalar: ScalarType,
    big_endian: bool,
) -> Result<Vec<f64>, String> {
    if data.len() < expected {
        return Err(format!(
            "the data has {} bytes but the sizes and type need {expected}; the file is truncated",
            data.len()
        ));
    }
    Ok(data[..expected]
        .chunks_exact(scalar.byte_width())
        .map(|bytes| scalar.decode(bytes, big_endian))
        .collect())
}

fn decode_ascii(payload: &[u8], voxels: usize) -> Result<Vec<f64>, String> {
    let text =
        std::str::from_utf8(payload).map_err(|_| "ascii data is not valid text".to_string())?;
    let values: Vec<f64> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|item| !item.is_empty())
        .take(voxels + 1)
        .map(|item| parse_float("ascii data", item))
        .collect::<Result<_, _>>()?;
    if values.len() != voxels {
        return Err(format!(
            "ascii data has {} values but the sizes need {voxels}",
            values.len().min(voxels + 1)
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
