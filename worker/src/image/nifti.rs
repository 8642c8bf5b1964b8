//! NIfTI-1 reading (`.nii` and `.nii.gz`) through the `nifti` crate.
//!
//! Conventions: voxel values are returned after `scl_slope`/`scl_inter`
//! scaling as SimpleITK 2.5.7 applies it: a slope of 0 counts as 1, so a
//! non-zero intercept still applies (the NIfTI-1 standard would scale
//! nothing there, and nibabel follows it), and a NaN slope means no
//! scaling. Where SimpleITK
//! reads the file as float32 (a float32 file, or an integer file with a
//! scaling other than the identity), the scaled values are rounded to f32 as
//! SimpleITK stores them, so every image type starts from PyRadiomics' values.
//! The grid's placement comes from the sform when `sform_code > 0`, else
//! from the qform when `qform_code > 0`, else from pixdim alone with the
//! origin at 0 (NIfTI-1 "method 1"). Only 3-D volumes are accepted; a 4-D
//! file with a single time point counts as 3-D.

use std::path::{Path, PathBuf};

use ndarray::{Array3, ShapeBuilder};
use nifti::{NiftiObject, NiftiType, ReaderOptions};

use super::{Geometry, PixelType, Volume};

/// Largest volume accepted, in voxels.
const MAX_VOXELS: usize = 1 << 31;

/// Errors while reading a NIfTI file.
#[derive(Debug, thiserror::Error)]
pub enum NiftiError {
    /// The file does not exist or cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a readable NIfTI-1 volume.
    #[error("invalid NIfTI file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problem.
        message: String,
    },
}

impl NiftiError {
    /// Returns the message without the path, safe to send off site.
    pub fn shareable_reason(&self) -> String {
        match self {
            NiftiError::Open { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_string(),
                _ => format!("cannot open file: {source}"),
            },
            NiftiError::Invalid { message, .. } => format!("invalid NIfTI file: {message}"),
        }
    }
}

/// Reads a 3-D NIfTI volume.
pub fn read_volume(path: &Path) -> Result<Volume, NiftiError> {
    Ok(read_image(path)?.0)
}

/// Reads a 3-D NIfTI volume and the pixel type SimpleITK gives it (see `pixel_type`).
pub fn read_image(path: &Path) -> Result<(Volume, PixelType), NiftiError> {
    let invalid = |message: String| NiftiError::Invalid {
        path: path.to_path_buf(),
        message,
    };

    // Open once ourselves so that a missing file is distinguished from a bad one.
    std::fs::File::open(path).map_err(|source| NiftiError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let object = ReaderOptions::new()
        .read_file(path)
        .map_err(|error| match error {
            nifti::NiftiError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                invalid(describe_early_end(path, &io))
            }
            nifti::NiftiError::Io(io) => invalid(io.to_string()),
            nifti::NiftiError::InvalidFormat => invalid(
                "not a NIfTI-1 file (NIfTI-2 is not supported; convert it to NIfTI-1)".to_string(),
            ),
            other => invalid(other.to_string()),
        })?;
    let header = object.header().clone();

    let rank = header.dim[0] as usize;
    let dims_ok = (rank == 3 || (rank == 4 && header.dim[4] == 1))
        && header.dim[1..4].iter().all(|&d| d >= 1);
    if !dims_ok {
        return Err(invalid(format!(
            "expected a 3-D volume, found dim = {:?}",
            &header.dim[..=rank.min(7)]
        )));
    }
    let dims = [
        header.dim[1] as usize,
        header.dim[2] as usize,
        header.dim[3] as usize,
    ];
    let datatype = header.data_type().map_err(|error| {
        invalid(format!(
            "unsupported datatype code {}: {error}",
            header.datatype
        ))
    })?;
    let stored_as_integer = matches!(
        datatype,
        NiftiType::Uint8
            | NiftiType::Int8
            | NiftiType::Uint16
            | NiftiType::Int16
            | NiftiType::Uint32
            | NiftiType::Int32
            | NiftiType::Uint64
            | NiftiType::Int64
    );
    if !stored_as_integer && !matches!(datatype, NiftiType::Float32 | NiftiType::Float64) {
        return Err(invalid(format!(
            "unsupported voxel type {datatype:?}; expected an integer or float type"
        )));
    }

    let geometry = geometry_from_header(&header, dims).map_err(invalid)?;

    // The `nifti` crate sizes its read by `bitpix` but shapes the array by
    // `dim` and `datatype`, and panics when the two disagree (a header
    // edited by hand, or a file cut after the header), so the sizes are
    // checked here first.
    let voxels = dims
        .iter()
        .try_fold(1usize, |product, &size| product.checked_mul(size))
        .filter(|&count| count <= MAX_VOXELS)
        .ok_or_else(|| {
            invalid(format!(
                "dim {dims:?} exceeds the limit of {MAX_VOXELS} voxels"
            ))
        })?;
    let volume = object.into_volume();
    let expected_bytes = voxels * datatype.size_of();
    if volume.raw_data().len() < expected_bytes {
        return Err(invalid(format!(
            "the voxel data has {} bytes but dim {dims:?} and datatype {datatype:?} need \
             {expected_bytes} (bitpix = {}); the file is truncated or its header is inconsistent",
            volume.raw_data().len(),
            header.bitpix
        )));
    }
    let scaling = scaling(header.scl_slope, header.scl_inter).map_err(invalid)?;
    let pixel_type = pixel_type(datatype, header.scl_slope, header.scl_inter);
    let little_endian = header.endianness == nifti::Endianness::Little;
    let values = voxel_values(
        volume.raw_data(),
        datatype,
        little_endian,
        voxels,
        scaling,
        pixel_type == PixelType::Float32,
    )
    .map_err(invalid)?;
    // NIfTI stores i fastest, so the voxels fill a Fortran-order array; a 4-D file with
    // one time point has the same first `voxels` values.
    let data = Array3::from_shape_vec(dims.f(), values)
        .map_err(|error| invalid(format!("voxel array does not match dim {dims:?}: {error}")))?;

    let volume = Volume {
        data,
        geometry,
        stored_as_integer: stored_as_integer && scaling.is_none_or(|(slope, _)| slope == 1.0),
    };
    Ok((volume, pixel_type))
}

/// Returns the pixel type that SimpleITK 2.5.7 (ITK 5.4 `NiftiImageIO`) reads a NIfTI
/// file as. Float32 and float64 files keep their type. An integer file becomes float32
/// when `scl_slope` is finite and the scaling is not the identity, with a slope of 0
/// counting as 1 (slope ∉ {0, 1} or intercept ≠ 0), and otherwise keeps an integer type.
/// Checked by reading int16, uint8, int32, float32 and float64 files with slopes 1, 2,
/// 0.5, 0 and NaN and intercepts 0 and 5 through `sitk.ReadImage`. The slope-0 rule was
/// checked on int16 and float32 files whose header bytes were patched, because nibabel
/// resets these fields on save.
fn pixel_type(datatype: NiftiType, slope: f32, intercept: f32) -> PixelType {
    match datatype {
        NiftiType::Float32 => PixelType::Float32,
        NiftiType::Float64 => PixelType::Float64,
        _ if slope.is_finite() && ((slope != 0.0 && slope != 1.0) || intercept != 0.0) => {
            PixelType::Float32
        }
        _ => PixelType::Integer,
    }
}

/// Returns the (slope, intercept) to apply, or `None` for no scaling. A NaN slope means
/// none. A slope of 0 counts as 1, as in SimpleITK 2.5.7, which adds the intercept of an
/// int16 or float32 file with slope 0 and intercept 5 (checked with `sitk.ReadImage`).
/// An infinite slope, or a non-finite intercept with a slope in use, is an error, because
/// no finite voxel value would come out of it.
fn scaling(slope: f32, intercept: f32) -> Result<Option<(f64, f64)>, String> {
    if slope.is_nan() {
        return Ok(None);
    }
    let slope = if slope == 0.0 { 1.0 } else { slope };
    if slope == 1.0 && intercept == 0.0 {
        return Ok(None);
    }
    if slope.is_infinite() {
        return Err(format!(
            "scl_slope is {slope}; set it to a finite number, or to 0 for no scaling"
        ));
    }
    if !intercept.is_finite() {
        return Err(format!(
            "scl_inter is {intercept} with scl_slope {slope}; set it to a finite number"
        ));
    }
    Ok(Some((f64::from(slope), f64::from(intercept))))
}

/// Converts the first `count` stored voxels to f64 and applies the scaling, in one pass
/// over the raw bytes.
///
/// Each stored value is converted with `as f64`, then, with a scaling, becomes value ·
/// slope + intercept in f64 (slope and intercept widened from f32). With `round_to_f32`
/// that result is rounded to the nearest f32, which is what SimpleITK 2.5.7 stores for a
/// float32 image. This was checked with `sitk.ReadImage` on int16, uint8 and float32
/// files with slope 0.3 and intercept −7.1, among other pairs. Computing in f32 instead
/// gave other values on up to a third of the voxels. `raw` contains at least `count`
/// values of `datatype`. A type other than an integer type, float32 or float64 is an
/// error.
fn voxel_values(
    raw: &[u8],
    datatype: NiftiType,
    little_endian: bool,
    count: usize,
    scaling: Option<(f64, f64)>,
    round_to_f32: bool,
) -> Result<Vec<f64>, String> {
    macro_rules! convert {
        ($stored:ty) => {{
            const SIZE: usize = std::mem::size_of::<$stored>();
            raw.chunks_exact(SIZE)
                .take(count)
                .map(|bytes| {
                    let mut array = [0_u8; SIZE];
                    array.copy_from_slice(bytes);
                    let value = if little_endian {
                        <$stored>::from_le_bytes(array)
                    } else {
                        <$stored>::from_be_bytes(array)
                    };
                    value as f64
                })
                .collect::<Vec<f64>>()
        }};
    }
    let mut values = match datatype {
        NiftiType::Uint8 => raw
            .iter()
            .take(count)
            .map(|&value| f64::from(value))
            .collect(),
        NiftiType::Int8 => raw
            .iter()
            .take(count)
            .map(|&value| f64::from(value as i8))
            .collect(),
        NiftiType::Uint16 => convert!(u16),
        NiftiType::Int16 => convert!(i16),
        NiftiType::Uint32 => convert!(u32),
        NiftiType::Int32 => convert!(i32),
        NiftiType::Uint64 => convert!(u64),
        NiftiType::Int64 => convert!(i64),
        NiftiType::Float32 => convert!(f32),
        NiftiType::Float64 => convert!(f64),
        other => return Err(format!("unsupported voxel type {other:?}")),
    };
    if let Some((slope, intercept)) = scaling {
        for value in &mut values {
            let scaled = *value * slope + intercept;
            *value = if round_to_f32 {
                f64::from(scaled as f32)
            } else {
                scaled
            };
        }
    }
    Ok(values)
}

/// Builds the grid geometry from the header's sform, qform or pixdim.
fn geometry_from_header(header: &nifti::NiftiHeader, dims: [usize; 3]) -> Result<Geometry, String> {
    let spacing_field = [
        header.pixdim[1] as f64,
        header.pixdim[2] as f64,
        header.pixdim[3] as f64,
    ];

    let (origin, columns) = if header.sform_code > 0 {
        let rows = [header.srow_x, header.srow_y, header.srow_z];
        let origin = [rows[0][3] as f64, rows[1][3] as f64, rows[2][3] as f64];
        let columns: [[f64; 3]; 3] =
            std::array::from_fn(|c| [rows[0][c] as f64, rows[1][c] as f64, rows[2][c] as f64]);
        (origin, columns)
    } else if header.qform_code > 0 {
        let rotation = quaternion_rotation(
            header.quatern_b as f64,
            header.quatern_c as f64,
            header.quatern_d as f64,
        );
        let qfac = if header.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = [
            spacing_field[0].abs(),
            spacing_field[1].abs(),
            spacing_field[2].abs() * qfac,
        ];
        let columns: [[f64; 3]; 3] =
            std::array::from_fn(|c| std::array::from_fn(|r| rotation[r][c] * scale[c]));
        let origin = [
            header.quatern_x as f64,
            header.quatern_y as f64,
            header.quatern_z as f64,
        ];
        (origin, columns)
    } else {
        let columns: [[f64; 3]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|r| if r == c { spacing_field[c].abs() } else { 0.0 })
        });
        ([0.0; 3], columns)
    };

    Geometry::from_axis_columns(dims, origin, columns)
}

/// Rotation matrix of the NIfTI-1 unit quaternion (a, b, c, d), with a
/// derived as sqrt(1 − b² − c² − d²) (0 when that is negative).
fn quaternion_rotation(b: f64, c: f64, d: f64) -> [[f64; 3]; 3] {
    let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
    [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ]
}

/// Explains why the reader met the end of `path` early. A file whose name
/// ends in `.gz` but that lacks the gzip magic bytes (1f 8b) was renamed or
/// saved in another format, which "truncated" would misdescribe.
fn describe_early_end(path: &Path, io: &std::io::Error) -> String {
    use std::io::Read;

    let is_gz_name = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gz"));
    let mut magic = [0u8; 2];
    let has_gzip_magic = std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b];
    if is_gz_name && !has_gzip_magic {
        return "the name ends in .gz but the file is not gzip-compressed; \
                export the volume again as NIfTI-1 (.nii or .nii.gz)"
            .to_string();
    }
    format!("file is truncated ({io}); copy it again from its source")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STS_DEFAULT_ROOT: &str = "../../shared/data";

    fn data_root() -> PathBuf {
        std::env::var_os("RADSTUDY_DATA_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(STS_DEFAULT_ROOT))
    }

    #[test]
    fn nifti_reads_sts_mr_geometry() {
        let path = data_root().join("sts/STS_001/MR_T1_image.nii.gz");
        let volume = read_volume(&path).expect("STS_001 MR reads");
        // Header values of STS_001 (dim and pixdim, read with Python's gzip
        // and struct modules); pixdim is stored as float32, so compare to 1e-5.
        assert_eq!(volume.geometry.dims, [174, 158, 59]);
        assert!((volume.geometry.spacing[0] - 0.976562).abs() < 1e-5);
        assert!((volume.geometry.spacing[2] - 3.269955).abs() < 1e-5);
        assert_eq!(volume.data.dim(), (174, 158, 59));
    }

    #[test]
    fn nifti_sts_mr_reads_as_float32() {
        // STS MR T1 files store datatype 16 (float32); SimpleITK 2.5.7 reads them as
        // "32-bit float".
        let path = data_root().join("sts/STS_001/MR_T1_image.nii.gz");
        let (_, pixel_type) = read_image(&path).expect("STS_001 MR reads");
        assert_eq!(pixel_type, PixelType::Float32);
    }

    #[test]
    fn nifti_pixel_type_follows_simpleitk() {
        // Pixel types that `sitk.ReadImage` (SimpleITK 2.5.7) returned for files written
        // with each datatype and scl_slope / scl_inter pair.
        let cases = [
            (NiftiType::Int16, 1.0, 0.0, PixelType::Integer),
            (NiftiType::Int16, 2.0, 0.0, PixelType::Float32),
            (NiftiType::Int16, 1.0, 5.0, PixelType::Float32),
            (NiftiType::Uint8, 0.5, 0.0, PixelType::Float32),
            (NiftiType::Int32, 0.0, 0.0, PixelType::Integer),
            (NiftiType::Int16, f32::NAN, f32::NAN, PixelType::Integer),
            (NiftiType::Float32, 1.0, 0.0, PixelType::Float32),
            (NiftiType::Float32, 2.0, 5.0, PixelType::Float32),
            (NiftiType::Float64, 0.5, 0.0, PixelType::Float64),
        ];
        for (datatype, slope, intercept, expected) in cases {
            assert_eq!(
                pixel_type(datatype, slope, intercept),
                expected,
                "{datatype:?}, slope {slope}, intercept {intercept}"
            );
        }
    }

    #[test]
    fn nifti_missing_file_is_reported_as_not_found() {
        let error = read_volume(Path::new("/nonexistent/image.nii.gz")).unwrap_err();
        assert_eq!(error.shareable_reason(), "file not found");
    }

    #[test]
    fn nifti_truncated_gzip_is_invalid() {
        let source =
            std::fs::read(data_root().join("sts/STS_001/MR_T1_mask.nii.gz")).expect("mask bytes");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("truncated.nii.gz");
        std::fs::write(&path, &source[..source.len() / 2]).expect("write");
        let error = read_volume(&path).unwrap_err();
        assert!(matches!(error, NiftiError::Invalid { .. }), "{error}");
        let reason = error.shareable_reason();
        assert!(reason.contains("file is truncated"), "{reason}");
    }

    #[test]
    fn nifti_gz_name_without_gzip_is_named() {
        // A text file renamed to .nii.gz: shorter than the gzip header, so
        // the reader stops early, but the file is not a truncated copy.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("renamed.nii.gz");
        std::fs::write(&path, b"garbage\n").expect("write");
        let reason = read_volume(&path).unwrap_err().shareable_reason();
        assert!(reason.contains("not gzip-compressed"), "{reason}");
        assert!(!reason.contains("truncated"), "{reason}");
    }

    #[test]
    fn voxel_values_convert_byte_order_and_scale() {
        // Big-endian int16 256 and −2 (bytes 01 00 and FF FE), scaled by 2 and shifted by
        // 0.5: 256 · 2 + 0.5 = 512.5 and −2 · 2 + 0.5 = −3.5. A third value beyond
        // `count` is ignored.
        let raw = [0x01, 0x00, 0xFF, 0xFE, 0x00, 0x07];
        let doubled = Some((2.0, 0.5));
        let values = voxel_values(&raw, NiftiType::Int16, false, 2, doubled, false).expect("int16");
        assert_eq!(values, [512.5, -3.5]);

        // Little-endian float32 1.5 and −0.25 with slope 0, which means no scaling.
        let mut raw = Vec::new();
        raw.extend_from_slice(&1.5_f32.to_le_bytes());
        raw.extend_from_slice(&(-0.25_f32).to_le_bytes());
        let unscaled = scaling(0.0, 0.0).expect("slope 0 is valid");
        assert_eq!(unscaled, None);
        let values =
            voxel_values(&raw, NiftiType::Float32, true, 2, unscaled, true).expect("float32");
        assert_eq!(values, [1.5, -0.25]);
    }

    #[test]
    fn voxel_values_scaled_integer_rounds_like_simpleitk() {
        // Little-endian int16 1234, −2 and 7 with scl_slope 0.3 and scl_inter −7.1 (both
        // stored as f32). SimpleITK 2.5.7 reads this file as float32 with the values
        // below, printed by `sitk.GetArrayFromImage(sitk.ReadImage(path))`. They are the
        // f64 results 363.10001480579376, −7.699999928474426 and −4.999999821186066
        // rounded to f32, so the test compares exactly.
        let raw: Vec<u8> = [1234_i16, -2, 7]
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        let scaled = scaling(0.3, -7.1).expect("finite scaling");
        let values = voxel_values(&raw, NiftiType::Int16, true, 3, scaled, true).expect("int16");
        assert_eq!(values, [363.1000061035156, -7.699999809265137, -5.0]);
        assert_eq!(
            pixel_type(NiftiType::Int16, 0.3, -7.1),
            PixelType::Float32,
            "SimpleITK reads a scaled int16 file as float32"
        );
    }

    #[test]
    fn scaling_zero_slope_keeps_intercept() {
        // SimpleITK 2.5.7 reads an int16 file with scl_slope 0 and scl_inter 5 as float32
        // with 5 added to every stored value (sitk.ReadImage on values 0, 10, 20, 30).
        assert_eq!(scaling(0.0, 5.0), Ok(Some((1.0, 5.0))));
        assert_eq!(pixel_type(NiftiType::Int16, 0.0, 5.0), PixelType::Float32);
        assert_eq!(pixel_type(NiftiType::Int16, 0.0, 0.0), PixelType::Integer);
    }

    #[test]
    fn scaling_nan_slope_means_none() {
        // SimpleITK and nibabel both ignore a NaN slope and return the stored values.
        assert_eq!(scaling(f32::NAN, 5.0), Ok(None));
    }

    #[test]
    fn scaling_rejects_infinite_slope() {
        let error = scaling(f32::INFINITY, 0.0).unwrap_err();
        assert!(error.contains("scl_slope is inf"), "{error}");
    }

    #[test]
    fn scaling_rejects_nan_intercept() {
        let error = scaling(2.0, f32::NAN).unwrap_err();
        assert!(error.contains("scl_inter is NaN"), "{error}");
    }

    #[test]
    fn voxel_values_reject_unsupported_type() {
        let error = voxel_values(&[0; 8], NiftiType::Complex64, true, 1, None, false).unwrap_err();
        assert!(error.contains("Complex64"), "{error}");
    }

    #[test]
    fn quaternion_identity_is_identity_matrix() {
        let rotation = quaternion_rotation(0.0, 0.0, 0.0);
        assert_eq!(
            rotation,
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        );
    }
}
