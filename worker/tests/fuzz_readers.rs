//! Property tests that feed malformed files to the NRRD, NIfTI and DICOM
//! readers and malformed CSV to the manifest parser: every input must give
//! a volume, a mask, a manifest or an error, never a panic.
//!
//! Inputs are mutations of real files (the PyRadiomics NRRD test image and
//! an STS NIfTI mask, cut and with bytes overwritten) and generated
//! headers. `PROPTEST_CASES` sets the number of cases per property (256
//! by default); longer runs are recorded in docs/benchmarks.md.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use radstudy_worker::image::{nifti, nrrd};
use radstudy_worker::manifest::Manifest;

#[path = "dicom_input/writer.rs"]
#[allow(dead_code)]
mod dicom_writer;

/// A small DICOM case written once: a 4-slice series, a SEG and an
/// RTSTRUCT on it, as bytes to mutate.
struct DicomSeeds {
    image: radstudy_worker::image::Volume,
    slices: Vec<Vec<u8>>,
    seg: Vec<u8>,
    rtstruct: Vec<u8>,
}

fn dicom_seeds() -> &'static DicomSeeds {
    static SEEDS: std::sync::OnceLock<DicomSeeds> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        use dicom_writer::{RoiContours, Segment, SeriesIds};
        use radstudy_worker::image::{Geometry, Volume};

        let image = Volume {
            data: ndarray::Array3::from_shape_fn((6, 5, 4), |(i, j, k)| (i + j * k) as f64),
            geometry: Geometry {
                dims: [6, 5, 4],
                spacing: [1.0, 1.0, 2.0],
                origin: [0.0; 3],
                direction: [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: true,
        };
        let mut labels = image.clone();
        labels
            .data
            .mapv_inplace(|v| if v > 4.0 { 1.0 } else { 0.0 });
        let folder = tempfile::tempdir().expect("temporary folder");
        let ids = SeriesIds::new(1);
        let paths = dicom_writer::write_series(&image, folder.path(), &ids, 1.0, 0.0);
        let seg = folder.path().join("seg.dcm");
        dicom_writer::write_seg(
            &labels,
            &seg,
            &ids,
            &[Segment {
                number: 1,
                label: "a",
                value: 1.0,
            }],
        );
        let rtstruct = folder.path().join("rtstruct.dcm");
        let square = vec![
            [0.5, 0.5, 2.0],
            [3.5, 0.5, 2.0],
            [3.5, 3.5, 2.0],
            [0.5, 3.5, 2.0],
        ];
        dicom_writer::write_rtstruct(
            &rtstruct,
            &ids,
            &ids.frame_of_reference,
            &[RoiContours {
                number: 1,
                name: "a",
                contours: vec![square],
            }],
        );
        let read = |path: &Path| std::fs::read(path).expect("seed file reads");
        DicomSeeds {
            slices: paths.iter().map(|path| read(path)).collect(),
            seg: read(&seg),
            rtstruct: read(&rtstruct),
            image,
        }
    })
}

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Returns the bytes of a real file, or an empty vector when the data root is
/// missing (the properties on generated input still run).
fn seed_file(relative: &str) -> Vec<u8> {
    std::fs::read(data_root().join(relative)).unwrap_or_default()
}

/// Applies a cut and byte overwrites to `seed`.
fn mutate(seed: &[u8], cut: usize, edits: &[(usize, u8)]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    if !bytes.is_empty() {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    let length = bytes.len();
    if length > 0 {
        for &(position, value) in edits {
            bytes[position % length] = value;
        }
    }
    bytes
}

/// Header lines that the NRRD reader parses, with valid and invalid values.
fn nrrd_header_line() -> impl Strategy<Value = String> {
    let types = prop::sample::select(vec![
        "uchar",
        "short",
        "int",
        "float",
        "double",
        "block",
        "ulonglong",
        "",
    ]);
    let encodings = prop::sample::select(vec!["raw", "gzip", "ascii", "bzip2", "hex", ""]);
    let spaces = prop::sample::select(vec!["left-posterior-superior", "RAS", "scanner-xyz"]);
    prop_oneof![
        types.prop_map(|t| format!("type: {t}")),
        (0usize..6).prop_map(|d| format!("dimension: {d}")),
        prop::collection::vec(0usize..70_000, 0..5).prop_map(|sizes| {
            let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
            format!("sizes: {}", sizes.join(" "))
        }),
        encodings.prop_map(|e| format!("encoding: {e}")),
        prop::sample::select(vec!["little", "big", "middle"]).prop_map(|e| format!("endian: {e}")),
        spaces.prop_map(|s| format!("space: {s}")),
        "[-(),0-9. none]{0,40}".prop_map(|d| format!("space directions: {d}")),
        "[-(),0-9.]{0,30}".prop_map(|o| format!("space origin: {o}")),
        "[-0-9. nan]{0,20}".prop_map(|s| format!("spacings: {s}")),
        (0usize..5).prop_map(|n| format!("line skip: {n}")),
        (-1i64..40).prop_map(|n| format!("byte skip: {n}")),
        "[a-z./]{0,12}".prop_map(|f| format!("data file: {f}")),
        "[ -~]{0,40}",
    ]
}

proptest! {
    #[test]
    fn nrrd_mutated_real_file_never_panics(
        cut in any::<usize>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let seed = seed_file("pyradiomics/breast1_label.nrrd");
        let bytes = mutate(&seed, cut, &edits);
        let _ = nrrd::read_volume_from_bytes(&bytes, Path::new("fuzz.nrrd"));
    }

    #[test]
    fn nrrd_generated_header_never_panics(
        lines in prop::collection::vec(nrrd_header_line(), 0..14),
        payload in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = b"NRRD0004\n".to_vec();
        for line in &lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        bytes.push(b'\n');
        bytes.extend_from_slice(&payload);
        let _ = nrrd::read_volume_from_bytes(&bytes, Path::new("fuzz.nrrd"));
    }

    #[test]
    fn nifti_mutated_real_file_never_panics(
        cut in any::<usize>(),
        edits in prop::collection::vec((0usize..352, any::<u8>()), 0..8),
        gzip in any::<bool>(),
    ) {
        // Edits fall in the 348-byte header and the 4-byte extension flag,
        // where a bad value changes how the rest is read. The seed is the
        // decompressed mask of one STS patient; half the cases gzip it
        // again so that the decompressor sees the cut.
        let seed = seed_file("sts/STS_001/MR_T1_mask.nii.gz");
        let mut plain = Vec::new();
        if !seed.is_empty() {
            use std::io::Read;
            let _ = flate2::read::GzDecoder::new(&seed[..]).read_to_end(&mut plain);
        }
        let mut bytes = mutate(&plain, usize::MAX, &edits);
        let name = if gzip {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = encoder.write_all(&bytes);
            bytes = encoder.finish().unwrap_or_default();
            "fuzz.nii.gz"
        } else {
            "fuzz.nii"
        };
        let bytes = mutate(&bytes, cut, &[]);
        let folder = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = folder.path().join(name);
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = nifti::read_volume(&path);
    }

    #[test]
    fn dicom_mutated_files_never_panic(
        target in 0usize..3,
        slice in 0usize..4,
        cut in any::<usize>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        use radstudy_worker::config::GeometryTolerance;
        use radstudy_worker::mask::file::{RoiSelector, read_mask};

        // Target 0 mutates one slice of the series (the folder is read),
        // 1 the SEG and 2 the RTSTRUCT (read as masks of the intact image).
        let seeds = dicom_seeds();
        let folder = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(folder.path().join(name), bytes).map_err(|e| TestCaseError::fail(e.to_string()))
        };
        let frame = Some(dicom_writer::SeriesIds::new(1).frame_of_reference);
        match target {
            0 => {
                for (index, bytes) in seeds.slices.iter().enumerate() {
                    let bytes = if index == slice { mutate(bytes, cut, &edits) } else { bytes.clone() };
                    write(&format!("slice_{index}.dcm"), &bytes)?;
                }
                let _ = radstudy_worker::image::read_image(folder.path());
            }
            _ => {
                let seed = if target == 1 { &seeds.seg } else { &seeds.rtstruct };
                write("mask.dcm", &mutate(seed, cut, &edits))?;
                let _ = read_mask(
                    &folder.path().join("mask.dcm"),
                    &seeds.image,
                    frame.as_deref(),
                    &RoiSelector::Number(1),
                    &GeometryTolerance::default(),
                );
            }
        }
    }

    #[test]
    fn manifest_arbitrary_csv_never_panics(
        rows in prop::collection::vec(
            prop::collection::vec("[ -~]{0,12}|STS_0[0-9]{2}|[01]|MR_T1_image|\"[a-z,]{0,6}\"", 0..8),
            0..12,
        ),
        header_first in any::<bool>(),
    ) {
        let mut text = String::new();
        if header_first {
            text.push_str("patient_id,label,MR_T1_image,MR_T1_mask\n");
        }
        for row in &rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let root = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = Manifest::parse(text.as_bytes(), Path::new("fuzz.csv"), root.path());
    }
}
