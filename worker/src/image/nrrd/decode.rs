//! Decoding the data section into voxel values: the `type` field's scalar
//! types, line and byte skips, and the raw, gzip and ascii encodings.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::header::{Encoding, Header, parse_float};
use super::layout::Layout;

/// Voxel type of the `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScalarType {
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
    pub(super) fn parse(text: &str) -> Option<ScalarType> {
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

    pub(super) fn byte_width(self) -> usize {
        match self {
            ScalarType::I8 | ScalarType::U8 => 1,
            ScalarType::I16 | ScalarType::U16 => 2,
            ScalarType::I32 | ScalarType::U32 | ScalarType::F32 => 4,
            ScalarType::I64 | ScalarType::U64 | ScalarType::F64 => 8,
        }
    }

    pub(super) fn is_integer(self) -> bool {
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

/// Drops the first `lines` lines of the data.
pub(super) fn skip_lines(payload: &[u8], lines: usize) -> Result<&[u8], String> {
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
pub(super) fn decode_values(
    payload: &[u8],
    header: &Header,
    layout: &Layout,
) -> Result<Vec<f64>, String> {
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
