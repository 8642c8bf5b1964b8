//! Images in memory: a 3-D voxel array and its physical geometry.

pub mod dicom;
pub mod ibsi_resample;
pub mod nifti;
pub mod nrrd;
pub mod resample;

use std::path::Path;

use ndarray::Array3;

/// An image file that could not be read, from any supported format.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A NIfTI-1 file (`.nii`, `.nii.gz`).
    #[error(transparent)]
    Nifti(#[from] nifti::NiftiError),
    /// An NRRD file (`.nrrd`, `.nhdr`).
    #[error(transparent)]
    Nrrd(#[from] nrrd::NrrdError),
    /// A DICOM series, multi-frame file, RTSTRUCT or SEG.
    #[error(transparent)]
    Dicom(#[from] dicom::DicomError),
}

impl ImageError {
    /// Returns whether the file (or a file it names) could not be opened,
    /// as opposed to being opened and found invalid.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            ImageError::Nifti(nifti::NiftiError::Open { .. })
                | ImageError::Nrrd(nrrd::NrrdError::Open { .. })
                | ImageError::Dicom(dicom::DicomError::Open { .. })
        )
    }

    /// Returns the message without the path, safe to send off site.
    pub fn shareable_reason(&self) -> String {
        match self {
            ImageError::Nifti(error) => error.shareable_reason(),
            ImageError::Nrrd(error) => error.shareable_reason(),
            ImageError::Dicom(error) => error.shareable_reason(),
        }
    }
}

/// Reads a 3-D volume, choosing the format by the path: a folder or a file
/// that starts with the DICOM preamble is a DICOM series, `.nrrd` and
/// `.nhdr` are NRRD, anything else is read as NIfTI-1.
pub fn read_volume(path: &Path) -> Result<Volume, ImageError> {
    Ok(read_image_file(path)?.volume)
}

/// Reads a 3-D volume like [`read_volume`], and returns with it the DICOM
/// FrameOfReferenceUID (`None` for NIfTI and NRRD, which have none).
pub fn read_image(path: &Path) -> Result<(Volume, Option<String>), ImageError> {
    let file = read_image_file(path)?;
    Ok((file.volume, file.frame_of_reference_uid))
}

/// An image read from a file or DICOM series, with the header facts that the
/// features depend on besides the voxels.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// The voxels and their geometry.
    pub volume: Volume,
    /// The pixel type SimpleITK would give the image (see [`PixelType`]).
    pub pixel_type: PixelType,
    /// The DICOM FrameOfReferenceUID, `None` for NIfTI and NRRD, which have none.
    pub frame_of_reference_uid: Option<String>,
}

/// Reads a 3-D volume like [`read_volume`], with its pixel type and DICOM frame of
/// reference.
pub fn read_image_file(path: &Path) -> Result<ImageFile, ImageError> {
    if dicom::is_dicom_input(path) {
        let image = dicom::read_image(path)?;
        let pixel_type = PixelType::of_dicom(&image.volume);
        return Ok(ImageFile {
            volume: image.volume,
            pixel_type,
            frame_of_reference_uid: image.frame_of_reference_uid,
        });
    }
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let (volume, pixel_type) = if name.ends_with(".nrrd") || name.ends_with(".nhdr") {
        nrrd::read_image(path)?
    } else {
        nifti::read_image(path)?
    };
    Ok(ImageFile {
        volume,
        pixel_type,
        frame_of_reference_uid: None,
    })
}

/// The precision of the pixel type that SimpleITK 2.5 (ITK 5.4) gives an image when
/// PyRadiomics reads it with `sitk.ReadImage`. PyRadiomics' wavelet filter runs
/// PyWavelets on that array, and PyWavelets computes a float32 array in float32 and any
/// integer or float64 array in float64. The voxels in [`Volume::data`] are f64 in every
/// case.
///
/// A file's type is kept through resampling and preCrop and becomes [`PixelType::Float64`]
/// with normalisation, because SimpleITK's `Normalize` returns a 64-bit float image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelType {
    /// Any integer type.
    Integer,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
}

impl PixelType {
    /// Returns the pixel type of a DICOM image. SimpleITK 2.5.7 read int16, uint16 and
    /// int32 files with a non-integer RescaleSlope or RescaleIntercept as 64-bit float,
    /// and with whole values as an integer type or, for int32 with a slope above 1, as
    /// 64-bit float. It never gave float32. The DICOM reader marks every rescale other
    /// than slope 1 and a whole intercept as non-integer, so a whole slope above 1 gives
    /// [`PixelType::Float64`] here where SimpleITK may keep an integer type. PyWavelets
    /// computes both in float64, so the features are the same.
    pub fn of_dicom(volume: &Volume) -> PixelType {
        if volume.stored_as_integer {
            PixelType::Integer
        } else {
            PixelType::Float64
        }
    }
}

/// Where a voxel grid sits in physical space.
///
/// Voxel (i, j, k) has its centre at
/// `origin + direction · diag(spacing) · (i, j, k)ᵀ`, in mm, in the RAS+
/// world frame of NIfTI; readers of LPS formats (NRRD) convert to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Voxels along i, j and k.
    pub dims: [usize; 3],
    /// Voxel size along i, j and k, in mm; always > 0.
    pub spacing: [f64; 3],
    /// Physical position of voxel (0, 0, 0), in mm.
    pub origin: [f64; 3],
    /// Unit direction of each voxel axis in world space: `direction[r][c]` is
    /// the r-th world component of axis c.
    pub direction: [[f64; 3]; 3],
}

impl Geometry {
    /// Builds a geometry from the world vector of each voxel axis (a column
    /// of the index-to-world matrix, its length the spacing) and the origin,
    /// as NIfTI's sform and NRRD's `space directions` give them. Returns an
    /// error naming the axis when a column has zero or non-finite length,
    /// or when the origin is not finite.
    pub fn from_axis_columns(
        dims: [usize; 3],
        origin: [f64; 3],
        columns: [[f64; 3]; 3],
    ) -> Result<Geometry, String> {
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for c in 0..3 {
            let length = columns[c].iter().map(|v| v * v).sum::<f64>().sqrt();
            if !(length.is_finite() && length > 0.0) {
                return Err(format!(
                    "voxel axis {c} has zero or non-finite length {length} in the header transform"
                ));
            }
            spacing[c] = length;
            for r in 0..3 {
                direction[r][c] = columns[c][r] / length;
            }
        }
        if origin.iter().any(|v| !v.is_finite()) {
            return Err(format!("non-finite origin {origin:?}"));
        }
        Ok(Geometry {
            dims,
            spacing,
            origin,
            direction,
        })
    }

    /// Returns the volume of one voxel, in mm³.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing.iter().product()
    }

    /// Compares two grids; returns a description of the first difference
    /// beyond tolerance, or `None` when they match.
    pub fn mismatch(
        &self,
        other: &Geometry,
        tolerance: &crate::config::GeometryTolerance,
    ) -> Option<String> {
        if self.dims != other.dims {
            return Some(format!(
                "size {:?} differs from {:?}",
                other.dims, self.dims
            ));
        }
        for axis in 0..3 {
            let (a, b) = (self.spacing[axis], other.spacing[axis]);
            if (a - b).abs() > tolerance.spacing_relative * a.abs().max(b.abs()) {
                return Some(format!(
                    "spacing {:?} mm differs from {:?} mm",
                    other.spacing, self.spacing
                ));
            }
        }
        let distance = (0..3)
            .map(|axis| (self.origin[axis] - other.origin[axis]).powi(2))
            .sum::<f64>()
            .sqrt();
        if distance > tolerance.origin_mm {
            return Some(format!(
                "origin {:?} mm is {distance:.4} mm away from {:?} mm (tolerance {} mm)",
                other.origin, self.origin, tolerance.origin_mm
            ));
        }
        for row in 0..3 {
            for column in 0..3 {
                if (self.direction[row][column] - other.direction[row][column]).abs()
                    > tolerance.direction
                {
                    return Some(format!(
                        "direction {:?} differs from {:?}",
                        other.direction, self.direction
                    ));
                }
            }
        }
        None
    }
}

/// A scalar volume with its geometry. `data` is indexed `[i, j, k]`.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Voxel values after the file's intensity scaling.
    pub data: Array3<f64>,
    /// Physical placement of the grid.
    pub geometry: Geometry,
    /// Whether the file stores integer voxel types (before scaling).
    pub stored_as_integer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GeometryTolerance;

    fn grid() -> Geometry {
        Geometry {
            dims: [4, 5, 6],
            spacing: [1.0, 1.0, 3.0],
            origin: [0.0, 0.0, 0.0],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    #[test]
    fn geometry_identical_grids_match() {
        assert_eq!(
            grid().mismatch(&grid(), &GeometryTolerance::default()),
            None
        );
    }

    #[test]
    fn geometry_shifted_origin_is_reported() {
        let mut shifted = grid();
        shifted.origin[2] = 0.5;
        let message = grid()
            .mismatch(&shifted, &GeometryTolerance::default())
            .expect("0.5 mm is beyond 1e-3 mm");
        assert!(message.contains("origin"), "{message}");
    }

    #[test]
    fn geometry_other_size_is_reported() {
        let mut other = grid();
        other.dims = [4, 5, 7];
        let message = grid()
            .mismatch(&other, &GeometryTolerance::default())
            .expect("sizes differ");
        assert!(message.contains("size"), "{message}");
    }

    #[test]
    fn geometry_spacing_within_tolerance_matches() {
        let mut other = grid();
        other.spacing[2] = 3.0 * (1.0 + 1e-6);
        assert_eq!(grid().mismatch(&other, &GeometryTolerance::default()), None);
    }
}
