use std::path::{Path, PathBuf};

use super::*;

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Returns the header of a little-endian int16 file of 2 × 3 × 2 voxels whose values are their
/// file positions 0..12, with the given extra header lines.
fn small_header(extra: &str) -> String {
    format!(
        "NRRD0004\n# a comment\ntype: short\ndimension: 3\nsizes: 2 3 2\nendian: little\n{extra}\n\n"
    )
}

fn raw_int16(values: impl IntoIterator<Item = i16>, big_endian: bool) -> Vec<u8> {
    values
        .into_iter()
        .flat_map(|value| {
            if big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            }
        })
        .collect()
}

fn read(bytes: &[u8]) -> Result<Volume, NrrdError> {
    read_volume_from_bytes(bytes, Path::new("test.nrrd"))
}

fn invalid_message(bytes: &[u8]) -> String {
    match read(bytes) {
        Err(NrrdError::Invalid { message, .. }) => message,
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

#[test]
fn nrrd_pyradiomics_brain1_image_geometry_and_values() {
    let path = data_root().join("pyradiomics/brain1_image.nrrd");
    let volume = read_volume(&path).expect("the PyRadiomics test image is readable");

    // Header of brain1_image.nrrd: sizes 256 256 25, LPS directions
    // (0.78125,0,0) (0,-0.78125,0) (0,0,6.5), origin (-99.609375,
    // 99.609375, -78). In RAS the x and y components change sign. The
    // values are the header's decimal strings, so 1e-12 mm covers parsing.
    let geometry = &volume.geometry;
    assert_eq!(geometry.dims, [256, 256, 25]);
    for (got, want) in geometry.spacing.iter().zip([0.78125, 0.78125, 6.5]) {
        assert!((got - want).abs() < 1e-12, "spacing {got} vs {want}");
    }
    for (got, want) in geometry.origin.iter().zip([99.609375, -99.609375, -78.0]) {
        assert!((got - want).abs() < 1e-12, "origin {got} vs {want}");
    }
    assert_eq!(
        geometry.direction,
        [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    assert!(volume.stored_as_integer);

    // Reference values from Python's gzip and struct modules reading the
    // same file (little-endian int16, first axis fastest): integer sums,
    // so exact.
    assert_eq!(volume.data.len(), 1_638_400);
    assert_eq!(volume.data.sum(), 631_859_459.0);
    assert_eq!(volume.data[[100, 120, 10]], 560.0);
    assert_eq!(volume.data[[255, 255, 24]], 0.0);
}

#[test]
fn nrrd_pixel_type_follows_type_field() {
    // ITK's NRRD reader keeps the `type` field's type: short is an integer type, float
    // and double are 32- and 64-bit floats.
    for (type_name, width, expected) in [
        ("short", 2, PixelType::Integer),
        ("float", 4, PixelType::Float32),
        ("double", 8, PixelType::Float64),
    ] {
        let header = small_header("encoding: raw\nspacings: 1 1 1")
            .replace("type: short", &format!("type: {type_name}"));
        let mut bytes = header.into_bytes();
        bytes.extend(std::iter::repeat_n(0u8, 12 * width));
        let (_, pixel_type) =
            read_image_from_bytes(&bytes, Path::new("test.nrrd")).expect("header is valid");
        assert_eq!(pixel_type, expected, "type: {type_name}");
    }
}

#[test]
fn nrrd_pyradiomics_brain1_label_counts() {
    let path = data_root().join("pyradiomics/brain1_label.nrrd");
    let volume = read_volume(&path).expect("the PyRadiomics test label is readable");

    // Python's gzip and struct count 4,137 voxels of label 1 (int32 data).
    let ones = volume.data.iter().filter(|&&value| value == 1.0).count();
    assert_eq!(ones, 4_137);
    assert_eq!(
        volume.data.iter().filter(|&&value| value != 0.0).count(),
        4_137
    );
}

#[test]
fn nrrd_unsigned_short_phantom_sum() {
    let path = data_root().join("pyradiomics/prostate_phantom_subvolume.nrrd");
    let volume = read_volume(&path).expect("the phantom is readable");

    // Python's gzip and struct: 71,422 uint16 voxels summing to 27,811,967.
    assert_eq!(volume.data.len(), 71_422);
    assert_eq!(volume.data.sum(), 27_811_967.0);
    // Its LPS x direction is -0.5 mm, so in RAS the x axis points to +x.
    assert_eq!(volume.geometry.direction[0][0], 1.0);
}

#[test]
fn nrrd_raw_little_endian_first_axis_fastest() {
    let mut bytes = small_header("encoding: raw\nspacings: 1 2 3").into_bytes();
    bytes.extend(raw_int16(0..12, false));

    let volume = read(&bytes).expect("valid raw file");

    // Position p = i + 2 (j + 3 k) contains the value p.
    assert_eq!(volume.data[[1, 0, 0]], 1.0);
    assert_eq!(volume.data[[0, 1, 0]], 2.0);
    assert_eq!(volume.data[[0, 0, 1]], 6.0);
    assert_eq!(volume.data[[1, 2, 1]], 11.0);
    assert_eq!(volume.geometry.spacing, [1.0, 2.0, 3.0]);
}

#[test]
fn nrrd_raw_big_endian_matches_little_endian() {
    let values: Vec<i16> = vec![-32768, -1, 0, 1, 255, 256, 32767, 7, 8, 9, 10, 11];
    let mut little = small_header("encoding: raw\nspacings: 1 1 1").into_bytes();
    little.extend(raw_int16(values.clone(), false));
    let mut big = small_header("encoding: raw\nspacings: 1 1 1")
        .replace("endian: little", "endian: big")
        .into_bytes();
    big.extend(raw_int16(values, true));

    let little = read(&little).expect("little-endian file");
    let big = read(&big).expect("big-endian file");

    assert_eq!(little.data, big.data);
    // int16 extremes survive decoding.
    assert_eq!(little.data[[0, 0, 0]], -32768.0);
    assert_eq!(little.data[[0, 0, 1]], 32767.0);
}

#[test]
fn nrrd_ascii_encoding_reads_values() {
    let mut text = small_header("encoding: ascii\nspacings: 1 1 1");
    text.push_str("0 1 2 3 4 5\n6 7 8 9 10 11\n");

    let volume = read(text.as_bytes()).expect("valid ascii file");

    assert_eq!(volume.data[[1, 2, 1]], 11.0);
}

#[test]
fn nrrd_ascii_short_data_is_rejected() {
    let mut text = small_header("encoding: ascii\nspacings: 1 1 1");
    text.push_str("0 1 2\n");

    let message = invalid_message(text.as_bytes());

    assert!(
        message.contains("3 values") && message.contains("12"),
        "{message}"
    );
}

#[test]
fn nrrd_four_axes_with_singleton_read_as_3d() {
    let header = "NRRD0004\ntype: uchar\ndimension: 4\nsizes: 1 2 3 2\nencoding: raw\n\
                  space: right-anterior-superior\n\
                  space directions: none (1,0,0) (0,1,0) (0,0,2)\nspace origin: (5,6,7)\n\n";
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend(0u8..12);

    let volume = read(&bytes).expect("4-D file with a singleton axis");

    assert_eq!(volume.geometry.dims, [2, 3, 2]);
    assert_eq!(volume.geometry.origin, [5.0, 6.0, 7.0]);
    assert_eq!(volume.data[[1, 2, 1]], 11.0);
}

#[test]
fn nrrd_lps_frame_becomes_ras() {
    let mut bytes = small_header(
        "encoding: raw\nspace: left-posterior-superior\n\
         space directions: (2,0,0) (0,3,0) (0,0,4)\nspace origin: (10,20,30)",
    )
    .into_bytes();
    bytes.extend(raw_int16(0..12, false));

    let volume = read(&bytes).expect("valid LPS file");

    assert_eq!(volume.geometry.origin, [-10.0, -20.0, 30.0]);
    assert_eq!(volume.geometry.spacing, [2.0, 3.0, 4.0]);
    assert_eq!(
        volume.geometry.direction,
        [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    );
}

#[test]
fn nrrd_detached_data_file_is_read() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let header = small_header("encoding: raw\nspacings: 1 1 1\ndata file: volume.raw");
    std::fs::write(folder.path().join("volume.nhdr"), header).expect("write header");
    std::fs::write(folder.path().join("volume.raw"), raw_int16(0..12, false)).expect("write data");

    let volume = read_volume(&folder.path().join("volume.nhdr")).expect("detached file");

    assert_eq!(volume.data[[1, 2, 1]], 11.0);
}

#[test]
fn nrrd_detached_data_outside_folder_is_rejected() {
    let bytes = small_header("encoding: raw\nspacings: 1 1 1\ndata file: ../secret.raw");

    let message = invalid_message(bytes.as_bytes());

    assert!(message.contains("leaves the header's folder"), "{message}");
}

#[test]
fn nrrd_truncated_gzip_is_rejected() {
    let path = data_root().join("pyradiomics/breast1_image.nrrd");
    let bytes = std::fs::read(&path).expect("read test image");
    let cut = &bytes[..bytes.len() / 2];

    let message = invalid_message(cut);

    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn nrrd_short_raw_data_is_rejected() {
    let mut bytes = small_header("encoding: raw\nspacings: 1 1 1").into_bytes();
    bytes.extend(raw_int16(0..11, false));

    let message = invalid_message(&bytes);

    assert!(
        message.contains("22 bytes") && message.contains("24"),
        "{message}"
    );
}

#[test]
fn nrrd_missing_fields_are_named() {
    let cases = [
        (
            "NRRD0004\ndimension: 3\nsizes: 1 1 1\nencoding: raw\nspacings: 1 1 1\n\n",
            "\"type\"",
        ),
        (
            "NRRD0004\ntype: uchar\nsizes: 1 1 1\nencoding: raw\nspacings: 1 1 1\n\n",
            "\"dimension\"",
        ),
        (
            "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 1\nspacings: 1 1 1\n\n",
            "\"encoding\"",
        ),
        (
            "NRRD0004\ntype: short\ndimension: 3\nsizes: 1 1 1\nencoding: raw\nspacings: 1 1 1\n\n",
            "\"endian\"",
        ),
        (
            "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 1 1 1\nencoding: raw\n\n",
            "voxel size",
        ),
    ];
    for (header, field) in cases {
        let message = invalid_message(header.as_bytes());
        assert!(message.contains(field), "{field}: {message}");
    }
}

#[test]
fn nrrd_unsupported_values_are_named() {
    let cases = [
        ("type: block", "unsupported type"),
        ("encoding: bzip2", "unsupported encoding \"bzip2\""),
        ("space: scanner-xyz", "unsupported space"),
        ("dimension: 2", "dimension"),
    ];
    for (line, expected) in cases {
        let field = line.split(':').next().unwrap_or_default();
        let header = small_header("encoding: raw\nspacings: 1 1 1")
            .lines()
            .filter(|existing| !existing.is_empty() && !existing.starts_with(&format!("{field}:")))
            .chain(std::iter::once(line))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n\n";
        let message = invalid_message(header.as_bytes());
        assert!(message.contains(expected), "{line}: {message}");
    }
}

#[test]
fn nrrd_huge_sizes_are_rejected_before_allocating() {
    let header = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 100000 100000 100000\n\
                  encoding: raw\nspacings: 1 1 1\n\n";

    let message = invalid_message(header.as_bytes());

    assert!(message.contains("exceed the limit"), "{message}");
}

#[test]
fn nrrd_without_magic_is_rejected() {
    let message = invalid_message(b"P5\n2 2\n255\n");

    assert!(message.contains("magic"), "{message}");
}

#[test]
fn nrrd_missing_file_is_open_error() {
    let error = read_volume(Path::new("/nonexistent/file.nrrd")).expect_err("no such file");

    assert_eq!(error.shareable_reason(), "file not found");
}
