//! NIfTI output of the synthetic volumes: the shared header geometry and
//! the image and mask writers.

use std::path::Path;

use ndarray::Array3;
use nifti::writer::WriterOptions;
use nifti::{Endianness, NiftiHeader, Unit, XForm};

use super::{SynthError, SyntheticSpec};

/// Builds the header geometry shared by images and masks. pixdim holds the
/// spacing in mm. The qform and sform are identical and place voxel
/// (i, j, k) at `origin + (i, j, k) × spacing`, with identity direction and
/// the volume centered on the world origin. Byte order is fixed to
/// little-endian so the files do not depend on the machine.
pub(super) fn reference_header(spec: &SyntheticSpec) -> NiftiHeader {
    let [sx, sy, sz] = spec.spacing_mm.map(|value| value as f32);
    let origin = volume_origin_mm(spec).map(|value| value as f32);

    let text = b"radstudy synthetic demo cohort";
    let mut descrip = vec![0u8; 80];
    descrip[..text.len()].copy_from_slice(text);

    NiftiHeader {
        pixdim: [1.0, sx, sy, sz, 1.0, 1.0, 1.0, 1.0],
        xyzt_units: Unit::Mm as u8,
        descrip,
        qform_code: XForm::ScannerAnat as i16,
        sform_code: XForm::ScannerAnat as i16,
        quatern_b: 0.0,
        quatern_c: 0.0,
        quatern_d: 0.0,
        quatern_x: origin[0],
        quatern_y: origin[1],
        quatern_z: origin[2],
        srow_x: [sx, 0.0, 0.0, origin[0]],
        srow_y: [0.0, sy, 0.0, origin[1]],
        srow_z: [0.0, 0.0, sz, origin[2]],
        endianness: Endianness::Little,
        ..NiftiHeader::default()
    }
}

/// Returns the world position in mm of voxel (0, 0, 0).
fn volume_origin_mm(spec: &SyntheticSpec) -> [f64; 3] {
    let mut origin = [0.0; 3];
    for (axis, value) in origin.iter_mut().enumerate() {
        *value = -((spec.dims[axis] - 1) as f64) * spec.spacing_mm[axis] / 2.0;
    }
    origin
}

pub(super) fn write_image(
    path: &Path,
    header: &NiftiHeader,
    image: &Array3<i16>,
) -> Result<(), SynthError> {
    WriterOptions::new(path)
        .reference_header(header)
        .compress(true)
        .write_nifti(image)
        .map_err(|source| SynthError::WriteNifti {
            path: path.to_path_buf(),
            source,
        })
}

pub(super) fn write_mask(
    path: &Path,
    header: &NiftiHeader,
    mask: &Array3<u8>,
) -> Result<(), SynthError> {
    WriterOptions::new(path)
        .reference_header(header)
        .compress(true)
        .write_nifti(mask)
        .map_err(|source| SynthError::WriteNifti {
            path: path.to_path_buf(),
            source,
        })
}
