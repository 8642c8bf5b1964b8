use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ndarray::Array3;

use super::*;
use crate::image::nifti::read_volume;

/// Geometry read back from a file written from a geometry that was itself
/// read from NIfTI: only float32 rounding of products of float32 values
/// separates them, below 1e-6 mm for the STS grids.
const NIFTI_ROUND_TRIP_MM: f64 = 1e-6;

/// Relative float32 rounding: the header stores every transform value as
/// float32 (24-bit significand, so 2^-24 ≈ 6e-8 relative), and the reader
/// normalises columns in f64; 4 ulps of margin.
const FLOAT32_RELATIVE: f64 = 4.0 * 5.97e-8;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.to_string()).collect()
}

fn sts_dir() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
        .join("sts/STS_001")
}

fn assert_geometry_close(found: &Geometry, expected: &Geometry, tolerance: impl Fn(f64) -> f64) {
    assert_eq!(found.dims, expected.dims);
    for axis in 0..3 {
        let (a, b) = (found.spacing[axis], expected.spacing[axis]);
        assert!((a - b).abs() <= tolerance(b), "spacing {axis}: {a} vs {b}");
        let (a, b) = (found.origin[axis], expected.origin[axis]);
        assert!((a - b).abs() <= tolerance(b), "origin {axis}: {a} vs {b}");
        for row in 0..3 {
            let (a, b) = (found.direction[row][axis], expected.direction[row][axis]);
            assert!(
                (a - b).abs() <= tolerance(1.0),
                "direction [{row}][{axis}]: {a} vs {b}"
            );
        }
    }
}

fn labels_of(volume: &crate::image::Volume) -> Array3<u8> {
    volume.data.mapv(|value| value as u8)
}

/// Two habitats on a mask: label 1 below the middle slice of its k range,
/// label 2 from it upwards.
fn split_by_slice(mask: &Array3<bool>) -> Array3<u8> {
    let ks: Vec<usize> = mask
        .indexed_iter()
        .filter(|(_, inside)| **inside)
        .map(|((_, _, k), _)| k)
        .collect();
    let middle =
        (ks.iter().min().copied().unwrap_or(0) + ks.iter().max().copied().unwrap_or(0)) / 2;
    Array3::from_shape_fn(mask.dim(), |(i, j, k)| match mask[[i, j, k]] {
        false => 0,
        true if k < middle => 1,
        true => 2,
    })
}

#[test]
fn habitat_map_round_trips_sts_geometry_and_labels() {
    let mask = read_volume(&sts_dir().join("MR_T1_mask.nii.gz")).expect("STS_001 MR mask reads");
    let labels = split_by_slice(&mask.data.mapv(|value| value > 0.5));
    let dir = tempfile::tempdir().expect("temp dir");

    let path = write_habitat_map(
        dir.path(),
        "A-0123456789abcdef",
        "MR_T1",
        &labels,
        &mask.geometry,
        &names(&["inner", "marginal"]),
    )
    .expect("map writes");

    assert_eq!(
        path,
        dir.path().join("A-0123456789abcdef_MR_T1_habitats.nii.gz")
    );
    let back = read_volume(&path).expect("written map reads with the project's reader");
    assert_geometry_close(&back.geometry, &mask.geometry, |_| NIFTI_ROUND_TRIP_MM);
    assert_eq!(labels_of(&back), labels);
    assert!(back.stored_as_integer);
}

fn oblique_flipped_grid() -> Geometry {
    // Rotation by 30° about z with the k axis reversed (det D = −1), so the
    // qform needs qfac = −1.
    let (sin, cos) = 30f64.to_radians().sin_cos();
    Geometry {
        dims: [6, 5, 4],
        spacing: [0.7, 1.3, 3.3],
        origin: [-101.3, 27.9, -64.05],
        direction: [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, -1.0]],
    }
}

fn checkerboard(dims: [usize; 3]) -> Array3<u8> {
    Array3::from_shape_fn((dims[0], dims[1], dims[2]), |(i, j, k)| {
        ((i + 2 * j + 3 * k) % 4) as u8
    })
}

#[test]
fn habitat_map_round_trips_oblique_flipped_grid() {
    let geometry = oblique_flipped_grid();
    let labels = checkerboard(geometry.dims);
    let dir = tempfile::tempdir().expect("temp dir");

    let path = write_habitat_map(
        dir.path(),
        "P1",
        "PET",
        &labels,
        &geometry,
        &names(&["inner", "middle", "marginal"]),
    )
    .expect("map writes");

    let back = read_volume(&path).expect("map reads");
    assert_geometry_close(&back.geometry, &geometry, |value| {
        FLOAT32_RELATIVE * value.abs()
    });
    assert_eq!(labels_of(&back), labels);
}

/// Rewrites `sform_code` (bytes 254–255 of the NIfTI-1 header, native byte
/// order as the writer used) to 0 so that readers must use the qform.
fn without_sform(path: &Path) -> PathBuf {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("map opens"))
        .read_to_end(&mut bytes)
        .expect("map decompresses");
    bytes[254..256].copy_from_slice(&0i16.to_ne_bytes());
    let patched = path.with_file_name("qform_only.nii.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&patched).expect("patched file"),
        flate2::Compression::fast(),
    );
    encoder.write_all(&bytes).expect("compress");
    encoder.finish().expect("finish gzip");
    patched
}

#[test]
fn habitat_map_qform_matches_geometry() {
    let (sin, cos) = 30f64.to_radians().sin_cos();
    // The quaternion conversion has one branch per largest component; these
    // directions reach each of them (trace > 0, then the largest diagonal
    // entry in row 0, 1 or 2), with and without a k flip.
    let directions = [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, -1.0]],
        [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
        [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
        [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    ];
    for direction in directions {
        let geometry = Geometry {
            direction,
            ..oblique_flipped_grid()
        };
        let labels = checkerboard(geometry.dims);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_habitat_map(
            dir.path(),
            "P1",
            "MR_T1",
            &labels,
            &geometry,
            &names(&["a", "b", "c"]),
        )
        .expect("map writes");

        let back = read_volume(&without_sform(&path)).expect("qform-only map reads");
        // The quaternion (b, c, d) is float32 and a is derived from it, so
        // the direction carries a few float32 roundings: 1e-6 absolute.
        assert_geometry_close(&back.geometry, &geometry, |value| {
            (FLOAT32_RELATIVE * value.abs()).max(1e-6)
        });
    }
}

#[test]
fn habitat_map_header_marks_label_intent_and_units() {
    let geometry = oblique_flipped_grid();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_habitat_map(
        dir.path(),
        "P1",
        "PET",
        &checkerboard(geometry.dims),
        &geometry,
        &names(&["inner", "middle", "marginal"]),
    )
    .expect("map writes");

    let header = NiftiHeader::from_file(&path).expect("header reads");
    assert_eq!(header.datatype, 2, "NIfTI-1 DT_UINT8 is 2");
    assert_eq!(header.intent_code, NIFTI_INTENT_LABEL);
    assert_eq!(header.xyzt_units, NIFTI_UNITS_MM);
    assert_eq!(header.sform_code, NIFTI_XFORM_SCANNER_ANAT);
    assert_eq!(header.qform_code, NIFTI_XFORM_SCANNER_ANAT);
    assert_eq!(header.pixdim[0], -1.0, "det D < 0 needs qfac = −1");
    assert_eq!(header.cal_max, 3.0);
}

#[test]
fn habitat_map_sidecar_lists_names_and_counts() {
    let geometry = oblique_flipped_grid();
    let labels = checkerboard(geometry.dims);
    let dir = tempfile::tempdir().expect("temp dir");
    write_habitat_map(
        dir.path(),
        "P1",
        "PET",
        &labels,
        &geometry,
        &names(&["inner", "middle", "marginal", "unused"]),
    )
    .expect("map writes");

    let text = std::fs::read_to_string(dir.path().join("P1_PET_habitats.json")).expect("sidecar");
    let sidecar: HabitatMapSidecar = serde_json::from_str(&text).expect("sidecar parses");
    assert_eq!(sidecar.label_map, "P1_PET_habitats.nii.gz");
    assert_eq!(sidecar.labels.len(), 4);
    for entry in &sidecar.labels {
        let expected = labels.iter().filter(|&&label| label == entry.value).count();
        assert_eq!(entry.voxels, expected, "label {}", entry.value);
        let volume = expected as f64 * geometry.voxel_volume_mm3();
        assert!((entry.volume_mm3 - volume).abs() < 1e-9 * volume.max(1.0));
    }
    assert_eq!(sidecar.labels[0].name, "inner");
    // Okabe–Ito orange for label 1, the overlay's first colour.
    assert_eq!(sidecar.labels[0].colour, "#E69F00");
    assert_eq!(sidecar.labels[3].voxels, 0);
    assert_eq!(
        sidecar.background_voxels,
        labels.iter().filter(|&&label| label == 0).count()
    );
}

#[test]
fn habitat_map_leaves_only_final_files() {
    let geometry = oblique_flipped_grid();
    let dir = tempfile::tempdir().expect("temp dir");
    write_habitat_map(
        dir.path(),
        "P1",
        "PET",
        &checkerboard(geometry.dims),
        &geometry,
        &names(&["a", "b", "c"]),
    )
    .expect("map writes");

    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec!["P1_PET_habitats.json", "P1_PET_habitats.nii.gz"]
    );
}

#[test]
fn habitat_map_rejects_path_in_pseudonym() {
    let geometry = oblique_flipped_grid();
    let dir = tempfile::tempdir().expect("temp dir");
    for pseudonym in ["../escape", "", ".hidden", "a/b"] {
        let error = write_habitat_map(
            dir.path(),
            pseudonym,
            "PET",
            &checkerboard(geometry.dims),
            &geometry,
            &names(&["a", "b", "c"]),
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                MapError::InvalidName {
                    field: "pseudonym",
                    ..
                }
            ),
            "{pseudonym:?}: {error}"
        );
    }
}

#[test]
fn habitat_map_rejects_label_without_name() {
    let geometry = oblique_flipped_grid();
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_habitat_map(
        dir.path(),
        "P1",
        "PET",
        &checkerboard(geometry.dims),
        &geometry,
        &names(&["a", "b"]),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            MapError::UnnamedLabel {
                label: 3,
                names: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("list dir").count(), 0);
}

#[test]
fn habitat_map_rejects_labels_of_other_shape() {
    let geometry = oblique_flipped_grid();
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_habitat_map(
        dir.path(),
        "P1",
        "PET",
        &checkerboard([6, 5, 5]),
        &geometry,
        &names(&["a", "b", "c"]),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            MapError::ShapeMismatch {
                expected: [6, 5, 4],
                found: [6, 5, 5],
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn habitat_map_missing_directory_is_io_error() {
    let geometry = oblique_flipped_grid();
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_habitat_map(
        &dir.path().join("absent"),
        "P1",
        "PET",
        &checkerboard(geometry.dims),
        &geometry,
        &names(&["a", "b", "c"]),
    )
    .unwrap_err();
    assert!(matches!(error, MapError::Io { .. }), "{error}");
}
