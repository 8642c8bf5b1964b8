//! The NRRD header: splitting it from the data and parsing its fields.

use super::MAX_HEADER_BYTES;
use super::decode::ScalarType;

/// Data encoding of the `encoding` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Raw,
    Gzip,
    Ascii,
}

/// The header fields this reader uses.
#[derive(Debug, Default)]
pub(super) struct Header {
    pub(super) scalar: Option<ScalarType>,
    pub(super) dimension: Option<usize>,
    pub(super) sizes: Vec<usize>,
    pub(super) encoding: Option<Encoding>,
    pub(super) big_endian: Option<bool>,
    /// Sign of the world x and y axes relative to RAS, from `space`.
    pub(super) frame_sign: Option<[f64; 3]>,
    pub(super) space_directions: Option<Vec<Option<[f64; 3]>>>,
    pub(super) space_origin: Option<[f64; 3]>,
    pub(super) spacings: Option<Vec<f64>>,
    pub(super) data_file: Option<String>,
    pub(super) line_skip: usize,
    pub(super) byte_skip: usize,
}

/// Splits the header (without the magic line) from the data; the header
/// ends at the first empty line.
pub(super) fn split_header(bytes: &[u8]) -> Result<(&str, usize), String> {
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
pub(super) fn parse_header(text: &str) -> Result<Header, String> {
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
            "space dimension" => check_space_dimension(value)?,
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

pub(super) fn parse_float(field: &str, text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|_| format!("{field} value {text:?} is not a number"))
}

/// Checks that a `space dimension` field is 3, the only one supported.
fn check_space_dimension(text: &str) -> Result<(), String> {
    if parse_count("space dimension", text)? != 3 {
        return Err(format!("space dimension {text} is not 3"));
    }
    Ok(())
}

fn parse_count(field: &str, text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("{field} value {text:?} is not a non-negative integer"))
}
