//! Stored pixel values of grey-scale frames, decoded by dicom-pixeldata.
//!
//! Supported: one sample per pixel, BitsAllocated 8, 16 or 32, signed or
//! unsigned (PixelRepresentation), native little-endian transfer syntaxes
//! and the compressed ones that dicom-pixeldata decodes in pure Rust (JPEG
//! baseline and lossless, RLE lossless, deflate). Values are the stored
//! values, before RescaleSlope and RescaleIntercept.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{PixelDecoder, PixelRepresentation};

use super::DicomError;
use super::attributes::Attributes;

/// Decoded frames of one object.
pub struct Frames {
    /// Stored values, frame after frame, each frame row after row.
    values: Vec<f64>,
    /// Pixels per frame.
    frame_len: usize,
}

impl Frames {
    /// Returns the stored values of frame `index` (0-based), row after row.
    pub fn frame(&self, index: usize) -> &[f64] {
        &self.values[index * self.frame_len..(index + 1) * self.frame_len]
    }

    /// Returns the number of frames.
    pub fn count(&self) -> usize {
        self.values.len() / self.frame_len.max(1)
    }
}

/// Decodes every frame of `object` into stored values.
pub fn decode_frames(
    attributes: &Attributes<'_>,
    object: &DefaultDicomObject,
) -> Result<Frames, DicomError> {
    if object.get(tags::FLOAT_PIXEL_DATA).is_some()
        || object.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some()
    {
        return Err(attributes.invalid(
            "FloatPixelData (7FE0,0008) and DoubleFloatPixelData (7FE0,0009) are not supported; \
             store the image with integer Pixel Data (7FE0,0010)"
                .to_string(),
        ));
    }
    let decoded = object.decode_pixel_data().map_err(|error| {
        attributes.invalid(format!(
            "cannot decode Pixel Data (7FE0,0010) with transfer syntax {}: {error}",
            object.meta().transfer_syntax()
        ))
    })?;
    if decoded.samples_per_pixel() != 1 {
        return Err(attributes.invalid(format!(
            "SamplesPerPixel (0028,0002) is {}; only grey-scale images (1 sample) are supported",
            decoded.samples_per_pixel()
        )));
    }
    let bits_allocated = decoded.bits_allocated();
    let bits_stored = decoded.bits_stored();
    if !matches!(bits_allocated, 8 | 16 | 32) || bits_stored == 0 || bits_stored > bits_allocated {
        return Err(attributes.invalid(format!(
            "BitsAllocated (0028,0100) {bits_allocated} with BitsStored (0028,0101) {bits_stored} is not supported; expected 8, 16 or 32 bits"
        )));
    }
    let signed = decoded.pixel_representation() == PixelRepresentation::Signed;
    let frame_len = decoded.rows() as usize * decoded.columns() as usize;
    let frames = decoded.number_of_frames() as usize;
    let bytes_per_sample = bits_allocated as usize / 8;
    let data = decoded.data();
    if data.len() < frame_len * frames * bytes_per_sample {
        return Err(attributes.invalid(format!(
            "Pixel Data (7FE0,0010) has {} bytes, fewer than {frames} frames of {} × {} pixels of {bits_allocated} bits need",
            data.len(),
            decoded.rows(),
            decoded.columns()
        )));
    }

    // Only the low BitsStored bits carry the value. A signed value's sign
    // bit is bit BitsStored − 1, because HighBit is taken to be BitsStored − 1.
    let unused = 32 - u32::from(bits_stored);
    let values = data[..frame_len * frames * bytes_per_sample]
        .chunks_exact(bytes_per_sample)
        .map(|bytes| {
            let raw = match bytes_per_sample {
                1 => u32::from(bytes[0]),
                2 => u32::from(u16::from_le_bytes([bytes[0], bytes[1]])),
                _ => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            };
            if signed {
                f64::from(((raw << unused) as i32) >> unused)
            } else {
                f64::from((raw << unused) >> unused)
            }
        })
        .collect();
    Ok(Frames { values, frame_len })
}
