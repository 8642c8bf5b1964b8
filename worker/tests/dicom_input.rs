//! DICOM input end to end: image series, enhanced multi-frame images, SEG
//! and RTSTRUCT masks, written in the test from the PyRadiomics NRRD cases
//! (no third-party DICOM is stored) and read back through the worker.

mod dicom_input {
    pub mod writer;
}

use std::path::{Path, PathBuf};

use dicom_input::writer::{
    RoiContours, Segment, SeriesIds, lps_slice_position, write_multi_frame, write_rtstruct,
    write_seg, write_series,
};
use ndarray::Array3;
use radstudy_worker::cli::extract::{Case, CaseError, extract_case, load_parameters};
use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::image::dicom::DicomError;
use radstudy_worker::image::{Geometry, ImageError, Volume, read_image, read_volume};
use radstudy_worker::mask::file::{MaskFileError, RoiSelector, read_mask};

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn pyradiomics(file: &str) -> PathBuf {
    data_root().join("pyradiomics").join(file)
}

/// Intercept of the written series: stored = value + 1024, so the reader's
/// rescale must be applied for the voxels to match.
const INTERCEPT: f64 = -1024.0;

/// Returns the DICOM error inside a mask error, or fails the test.
fn dicom_error(error: MaskFileError) -> DicomError {
    match error {
        MaskFileError::Read(ImageError::Dicom(error)) => error,
        other => panic!("expected a DICOM error, got {other}"),
    }
}

fn assert_geometry_close(actual: &Geometry, expected: &Geometry) {
    // Positions are written as DS text (at most 16 characters), so the slice
    // gap is measured from decimal positions: 1e-12 mm absorbs that rounding.
    assert_eq!(actual.dims, expected.dims);
    for axis in 0..3 {
        assert!(
            (actual.spacing[axis] - expected.spacing[axis]).abs() < 1e-12,
            "spacing {:?} vs {:?}",
            actual.spacing,
            expected.spacing
        );
        assert!(
            (actual.origin[axis] - expected.origin[axis]).abs() < 1e-12,
            "origin {:?} vs {:?}",
            actual.origin,
            expected.origin
        );
        for row in 0..3 {
            assert!((actual.direction[row][axis] - expected.direction[row][axis]).abs() < 1e-12);
        }
    }
}

#[test]
fn series_equals_nrrd_voxels() {
    let nrrd = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let dir = tempfile::tempdir().expect("temporary folder");
    let ids = SeriesIds::new(1);
    write_series(&nrrd, dir.path(), &ids, 1.0, INTERCEPT);

    let (dicom, frame) = read_image(dir.path()).expect("series reads");
    assert_eq!(frame.as_deref(), Some(ids.frame_of_reference.as_str()));
    assert_geometry_close(&dicom.geometry, &nrrd.geometry);
    // Stored int16 plus an integer intercept is exact in f64.
    assert_eq!(dicom.data, nrrd.data);
    assert!(dicom.stored_as_integer);

    // One file of the series names the whole series.
    let one_file = dir.path().join("slice_005.dcm");
    let by_file = read_volume(&one_file).expect("series read from one of its files");
    assert_eq!(by_file.data, nrrd.data);
}

#[test]
fn series_rescale_slope_scales_values() {
    // breast1 values are 6 to 248; halved with slope 2 every stored value
    // must be whole, so only even values are kept.
    let mut nrrd = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    nrrd.data.mapv_inplace(|v| 2.0 * (v / 2.0).floor());
    let dir = tempfile::tempdir().expect("temporary folder");
    write_series(&nrrd, dir.path(), &SeriesIds::new(2), 2.0, -10.0);
    let dicom = read_volume(dir.path()).expect("series reads");
    assert_eq!(dicom.data, nrrd.data);
    assert!(!dicom.stored_as_integer, "slope 2 is not integer storage");
}

#[test]
fn series_left_handed_grid_is_reordered() {
    // brain1's k axis points against row × column (LPS directions (1,0,0),
    // (0,−1,0), (0,0,1)), so the reader's slice order is the reverse of
    // the NRRD's, and every voxel must keep its world position.
    let nrrd = read_volume(&pyradiomics("brain1_image.nrrd")).expect("brain1 NRRD reads");
    let dir = tempfile::tempdir().expect("temporary folder");
    write_series(&nrrd, dir.path(), &SeriesIds::new(3), 1.0, INTERCEPT);
    let dicom = read_volume(dir.path()).expect("series reads");

    let slices = nrrd.geometry.dims[2];
    for k in 0..slices {
        let expected = nrrd.data.index_axis(ndarray::Axis(2), slices - 1 - k);
        assert_eq!(
            dicom.data.index_axis(ndarray::Axis(2), k),
            expected,
            "slice {k}"
        );
    }
    let last = lps_slice_position(&nrrd, slices - 1);
    let last_ras = [-last[0], -last[1], last[2]];
    for (axis, &expected) in last_ras.iter().enumerate() {
        assert!((dicom.geometry.origin[axis] - expected).abs() < 1e-9);
        assert!(
            (dicom.geometry.direction[axis][2] + nrrd.geometry.direction[axis][2]).abs() < 1e-12
        );
    }

    // The SEG is written from the NRRD's slice order and must land on the
    // same voxels after reordering: 4137 voxels of label 1 (the NRRD's count).
    let labels = read_volume(&pyradiomics("brain1_label.nrrd")).expect("brain1 label reads");
    let seg = dir.path().join("seg.dcm");
    write_seg(
        &labels,
        &seg,
        &SeriesIds::new(3),
        &[Segment {
            number: 1,
            label: "tumour",
            value: 1.0,
        }],
    );
    let (mask, label) = read_mask(
        &seg,
        &dicom,
        Some(SeriesIds::new(3).frame_of_reference.as_str()),
        &RoiSelector::Name("tumour".to_string()),
        &GeometryTolerance::default(),
    )
    .expect("SEG reads");
    assert_eq!(label, 1);
    assert_eq!(mask.data.iter().filter(|&&v| v == 1.0).count(), 4137);
    for k in 0..slices {
        let expected = labels.data.index_axis(ndarray::Axis(2), slices - 1 - k);
        assert_eq!(
            mask.data.index_axis(ndarray::Axis(2), k),
            expected,
            "mask slice {k}"
        );
    }
}

#[test]
fn multi_frame_equals_series() {
    let nrrd = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("enhanced.dcm");
    write_multi_frame(&nrrd, &path, &SeriesIds::new(4), INTERCEPT);
    let (dicom, frame) = read_image(&path).expect("multi-frame reads");
    assert_eq!(
        frame.as_deref(),
        Some(SeriesIds::new(4).frame_of_reference.as_str())
    );
    assert_geometry_close(&dicom.geometry, &nrrd.geometry);
    assert_eq!(dicom.data, nrrd.data);
}

#[test]
fn series_and_seg_features_equal_nrrd() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let image = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let labels = read_volume(&pyradiomics("breast1_label.nrrd")).expect("breast1 label reads");
    let ids = SeriesIds::new(5);
    let series = dir.path().join("series");
    write_series(&image, &series, &ids, 1.0, INTERCEPT);
    let seg = dir.path().join("seg.dcm");
    write_seg(
        &labels,
        &seg,
        &ids,
        &[Segment {
            number: 1,
            label: "lesion",
            value: 1.0,
        }],
    );

    let parameters = load_parameters(None, None).expect("PyRadiomics defaults");
    let extract = |image: PathBuf, mask: PathBuf, label: Option<RoiSelector>| {
        extract_case(
            &Case {
                id: "breast1".to_string(),
                image,
                mask,
                label,
            },
            &parameters.settings,
            &parameters.options,
            &parameters.image_types,
        )
        .expect("features")
    };
    let reference = extract(
        pyradiomics("breast1_image.nrrd"),
        pyradiomics("breast1_label.nrrd"),
        None,
    );
    let from_dicom = extract(series, seg, Some(RoiSelector::Name("lesion".to_string())));
    assert_eq!(from_dicom.len(), reference.len());
    assert!(
        reference.len() > 100,
        "all default classes: {}",
        reference.len()
    );
    for ((name, value), (reference_name, expected)) in from_dicom.iter().zip(&reference) {
        assert_eq!(name, reference_name);
        // Voxels and ROI are identical. Only the slice spacing can differ,
        // by rounding of the DS positions (about 1e-15 relative), so
        // spacing-dependent features (shape, energy) agree to 1e-12.
        let scale = expected.abs().max(1e-300);
        assert!(
            (value - expected).abs() <= 1e-12 * scale.max(1.0),
            "{name}: DICOM {value} vs NRRD {expected}"
        );
    }
}

#[test]
fn folder_with_two_series_lists_uids() {
    let nrrd = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let dir = tempfile::tempdir().expect("temporary folder");
    let first = SeriesIds::new(6);
    let second = SeriesIds::new(7);
    write_series(&nrrd, &dir.path().join("a"), &first, 1.0, INTERCEPT);
    write_series(&nrrd, &dir.path().join("b"), &second, 1.0, INTERCEPT);
    // Both series in one folder: the second's files get other names.
    for entry in std::fs::read_dir(dir.path().join("b")).expect("b lists") {
        let path = entry.expect("entry").path();
        let name = format!("b_{}", path.file_name().expect("name").to_string_lossy());
        std::fs::rename(&path, dir.path().join("a").join(name)).expect("moved");
    }
    let mixed = dir.path().join("a");

    let error = read_image(&mixed).unwrap_err();
    let ImageError::Dicom(DicomError::SeveralSeries { series, .. }) = &error else {
        panic!("expected SeveralSeries, got {error}");
    };
    assert_eq!(series, &vec![first.series.clone(), second.series.clone()]);
    assert!(error.to_string().contains(&second.series), "{error}");

    // Naming one file of the second series picks that series.
    let (chosen, frame) = read_image(&mixed.join("b_slice_001.dcm")).expect("second series");
    assert_eq!(frame.as_deref(), Some(second.frame_of_reference.as_str()));
    assert_eq!(chosen.data, nrrd.data);
}

#[test]
fn missing_slice_names_next_file() {
    let nrrd = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let dir = tempfile::tempdir().expect("temporary folder");
    let paths = write_series(&nrrd, dir.path(), &SeriesIds::new(8), 1.0, INTERCEPT);
    // paths[k] is slice k; remove slice 10, so slice 11 follows a 4.2 mm gap.
    std::fs::remove_file(&paths[10]).expect("removed");
    let error = read_image(dir.path()).unwrap_err();
    let ImageError::Dicom(DicomError::Series { path, message }) = &error else {
        panic!("expected a series error, got {error}");
    };
    assert_eq!(path, &paths[11]);
    assert!(message.contains("slice gap 4.2000 mm"), "{message}");
}

/// Returns a 12 × 10 × 4 grid of 1 mm pixels and 2 mm slices, LPS axis
/// aligned from LPS (0, 0, 0), so LPS (x, y, z) is index (x, y, z / 2).
fn small_grid() -> Volume {
    Volume {
        data: Array3::from_shape_fn((12, 10, 4), |(i, j, k)| (i + 2 * j + 3 * k) as f64),
        geometry: Geometry {
            dims: [12, 10, 4],
            spacing: [1.0, 1.0, 2.0],
            origin: [0.0, 0.0, 0.0],
            direction: [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: true,
    }
}

fn rectangle(x: [f64; 2], y: [f64; 2], z: f64) -> Vec<[f64; 3]> {
    vec![
        [x[0], y[0], z],
        [x[1], y[0], z],
        [x[1], y[1], z],
        [x[0], y[1], z],
    ]
}

/// Writes a small series and an RTSTRUCT with a rectangle ROI and a ROI
/// with a hole; returns (series folder, RTSTRUCT path, ids).
fn small_rtstruct_case(
    dir: &Path,
    frame_of_reference: Option<&str>,
) -> (PathBuf, PathBuf, SeriesIds) {
    let ids = SeriesIds::new(9);
    let series = dir.join("series");
    write_series(&small_grid(), &series, &ids, 1.0, 0.0);
    let rois = [
        RoiContours {
            number: 3,
            name: "box",
            // Centres x = 2..=5, y = 3..=6 on slice z = 2: 16 voxels.
            contours: vec![rectangle([1.5, 5.5], [2.5, 6.5], 2.0)],
        },
        RoiContours {
            number: 7,
            name: "ring",
            // Slice z = 4: outer 6 × 6 centres (1..=6) minus a 2 × 2 hole
            // (3..=4) is 32 voxels; slice z = 6: an L-shaped hexagon over
            // centres x = 1..=4, y = 1..=2 plus x = 1..=2, y = 3..=4 is 12.
            contours: vec![
                rectangle([0.5, 6.5], [0.5, 6.5], 4.0),
                rectangle([2.5, 4.5], [2.5, 4.5], 4.0),
                vec![
                    [0.5, 0.5, 6.0],
                    [4.5, 0.5, 6.0],
                    [4.5, 2.5, 6.0],
                    [2.5, 2.5, 6.0],
                    [2.5, 4.5, 6.0],
                    [0.5, 4.5, 6.0],
                ],
            ],
        },
    ];
    let rtstruct = dir.join("rtstruct.dcm");
    write_rtstruct(
        &rtstruct,
        &ids,
        frame_of_reference.unwrap_or(&ids.frame_of_reference),
        &rois,
    );
    (series, rtstruct, ids)
}

#[test]
fn rtstruct_rectangle_and_hole_counts() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, ids) = small_rtstruct_case(dir.path(), None);
    let (image, frame) = read_image(&series).expect("series reads");
    assert_eq!(frame.as_deref(), Some(ids.frame_of_reference.as_str()));
    let read = |selector: RoiSelector| {
        read_mask(
            &rtstruct,
            &image,
            frame.as_deref(),
            &selector,
            &GeometryTolerance::default(),
        )
        .expect("ROI rasterises")
    };

    let (boxed, label) = read(RoiSelector::Name("box".to_string()));
    assert_eq!(label, 3, "the ROI number is the label");
    assert_eq!(boxed.data.iter().filter(|&&v| v == 3.0).count(), 16);
    assert_eq!(boxed.data[[2, 3, 1]], 3.0);
    assert_eq!(boxed.data[[5, 6, 1]], 3.0);
    assert_eq!(boxed.data[[6, 6, 1]], 0.0);

    let (ring, label) = read(RoiSelector::Number(7));
    assert_eq!(label, 7);
    let slice = |k: usize| {
        ring.data
            .index_axis(ndarray::Axis(2), k)
            .iter()
            .filter(|&&v| v == 7.0)
            .count()
    };
    assert_eq!(slice(2), 32, "outer square minus hole");
    assert_eq!(ring.data[[3, 3, 2]], 0.0, "hole centre");
    assert_eq!(slice(3), 12, "L-shaped hexagon");
    assert_eq!(slice(0) + slice(1), 0);
}

#[test]
fn rtstruct_absent_name_lists_rois() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, _) = small_rtstruct_case(dir.path(), None);
    let (image, frame) = read_image(&series).expect("series reads");
    let error = read_mask(
        &rtstruct,
        &image,
        frame.as_deref(),
        &RoiSelector::Name("GTV".to_string()),
        &GeometryTolerance::default(),
    )
    .unwrap_err();
    let DicomError::RoiNotFound {
        requested, present, ..
    } = dicom_error(error)
    else {
        panic!("expected RoiNotFound");
    };
    assert_eq!(requested, "\"GTV\"");
    assert_eq!(
        present,
        vec!["3 \"box\"".to_string(), "7 \"ring\"".to_string()]
    );
}

#[test]
fn rtstruct_other_frame_of_reference_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, ids) = small_rtstruct_case(dir.path(), Some("2.25.999"));
    let (image, frame) = read_image(&series).expect("series reads");
    let error = read_mask(
        &rtstruct,
        &image,
        frame.as_deref(),
        &RoiSelector::Name("box".to_string()),
        &GeometryTolerance::default(),
    )
    .unwrap_err();
    let DicomError::FrameOfReference { mask, image, .. } = dicom_error(error) else {
        panic!("expected a frame of reference error");
    };
    assert_eq!(mask, "2.25.999");
    assert_eq!(image, ids.frame_of_reference);
}

#[test]
fn seg_absent_segment_lists_segments() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let image = small_grid();
    let mut labels = image.clone();
    labels.data.fill(0.0);
    labels.data[[1, 1, 1]] = 2.0;
    let seg = dir.path().join("seg.dcm");
    let ids = SeriesIds::new(10);
    write_seg(
        &labels,
        &seg,
        &ids,
        &[Segment {
            number: 2,
            label: "node",
            value: 2.0,
        }],
    );

    let error = read_mask(
        &seg,
        &image,
        Some(ids.frame_of_reference.as_str()),
        &RoiSelector::Number(1),
        &GeometryTolerance::default(),
    )
    .unwrap_err();
    let DicomError::RoiNotFound { kind, present, .. } = dicom_error(error) else {
        panic!("expected RoiNotFound");
    };
    assert_eq!(kind, "segment");
    assert_eq!(present, vec!["2 \"node\"".to_string()]);
}

#[test]
fn name_for_label_map_is_rejected() {
    let image = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let error = read_mask(
        &pyradiomics("breast1_label.nrrd"),
        &image,
        None,
        &RoiSelector::Name("lesion".to_string()),
        &GeometryTolerance::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, MaskFileError::NameForLabelMap { .. }),
        "{error}"
    );
}

#[test]
fn case_error_names_mask_file() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, _) = small_rtstruct_case(dir.path(), None);
    let parameters = load_parameters(None, None).expect("PyRadiomics defaults");
    let error = extract_case(
        &Case {
            id: "small".to_string(),
            image: series,
            mask: rtstruct.clone(),
            label: Some(RoiSelector::Name("GTV".to_string())),
        },
        &parameters.settings,
        &parameters.options,
        &parameters.image_types,
    )
    .unwrap_err();
    assert!(
        matches!(&error, CaseError::Mask { path, .. } if path == &rtstruct),
        "{error}"
    );
    assert!(error.to_string().contains("\"box\""), "{error}");
}

/// Runs the service's extraction of one sequence on `image` and `mask`,
/// with the study's `label` and the manifest's `<sequence>_label` cell.
fn extract_in_round(
    root: &Path,
    image: PathBuf,
    mask: PathBuf,
    label: u32,
    manifest_label: Option<RoiSelector>,
) -> Result<Vec<f64>, radstudy_worker::error::Exclusion> {
    use radstudy_worker::extract::{ExtractContext, extract_sequence};
    use radstudy_worker::features::{ExtractionSettings, FeatureClass};
    use radstudy_worker::manifest::SequenceFiles;

    let settings = ExtractionSettings {
        classes: vec![
            FeatureClass::FirstOrder,
            FeatureClass::Shape,
            FeatureClass::Glcm,
        ],
        bin_width: 25.0,
        label,
    };
    let request = radstudy_worker::feature_request::FeatureRequest::from_settings(settings);
    let canonical_root = std::fs::canonicalize(root).expect("root resolves");
    let context = ExtractContext {
        canonical_root: &canonical_root,
        features: &request,
        tolerance: &GeometryTolerance::default(),
    };
    let files = SequenceFiles {
        image,
        mask,
        label: manifest_label,
    };
    extract_sequence("MR", &files, &context)
}

#[test]
fn round_reads_series_and_seg() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let image = read_volume(&pyradiomics("breast1_image.nrrd")).expect("breast1 NRRD reads");
    let labels = read_volume(&pyradiomics("breast1_label.nrrd")).expect("breast1 label reads");
    let ids = SeriesIds::new(11);
    let series = dir.path().join("series");
    write_series(&image, &series, &ids, 1.0, INTERCEPT);
    let seg = dir.path().join("seg.dcm");
    write_seg(
        &labels,
        &seg,
        &ids,
        &[Segment {
            number: 1,
            label: "lesion",
            value: 1.0,
        }],
    );

    let from_dicom =
        extract_in_round(dir.path(), series, seg, 1, None).expect("DICOM sequence extracts");
    let reference = extract_in_round(
        &pyradiomics(""),
        pyradiomics("breast1_image.nrrd"),
        pyradiomics("breast1_label.nrrd"),
        1,
        None,
    )
    .expect("NRRD sequence extracts");
    assert_eq!(from_dicom.len(), reference.len());
    for (index, (value, expected)) in from_dicom.iter().zip(&reference).enumerate() {
        // Same voxels and ROI; the slice gap from DS positions can differ
        // by rounding (about 1e-15 relative), hence 1e-12.
        assert!(
            (value - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "feature {index}: DICOM {value} vs NRRD {expected}"
        );
    }
}

#[test]
fn round_excludes_other_frame_of_reference() {
    use radstudy_worker::error::ExclusionKind;

    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, _) = small_rtstruct_case(dir.path(), Some("2.25.999"));
    let exclusion = extract_in_round(dir.path(), series, rtstruct, 3, None).unwrap_err();
    assert_eq!(exclusion.kind, ExclusionKind::GeometryMismatch);
    assert_eq!(exclusion.field, "MR_mask");
    assert!(
        !exclusion.reason.contains("2.25.999"),
        "no UIDs leave the site: {}",
        exclusion.reason
    );
}

#[test]
fn round_manifest_label_selects_roi_by_name() {
    use radstudy_worker::error::ExclusionKind;

    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, _) = small_rtstruct_case(dir.path(), None);
    // The study's label 1 is no ROINumber of the file, so only the
    // manifest's name can select the ROI.
    let by_name = |name: &str| {
        extract_in_round(
            dir.path(),
            series.clone(),
            rtstruct.clone(),
            1,
            Some(RoiSelector::Name(name.to_string())),
        )
    };
    let by_number = extract_in_round(
        dir.path(),
        series.clone(),
        rtstruct.clone(),
        1,
        Some(RoiSelector::Number(7)),
    )
    .expect("ROINumber 7 is \"ring\"");
    let ring = by_name("ring").expect("\"ring\" is present");
    assert_eq!(ring, by_number, "the name and the number select one ROI");

    let exclusion = by_name("GTV").unwrap_err();
    assert_eq!(exclusion.kind, ExclusionKind::MaskInvalid);
    assert_eq!(exclusion.field, "MR_mask");
    assert_eq!(
        exclusion.reason,
        "ROI \"GTV\" not found; present: 3 \"box\"; 7 \"ring\""
    );
}

#[test]
fn cli_selects_rtstruct_roi_by_name() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, rtstruct, _) = small_rtstruct_case(dir.path(), None);
    let out = dir.path().join("features.csv");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_radstudy-worker"))
        .arg("extract")
        .arg(&series)
        .arg(&rtstruct)
        .args(["--label", "ring", "--out"])
        .arg(&out)
        .output()
        .expect("worker runs");

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("CSV written");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").clone();
    let row = reader
        .records()
        .next()
        .expect("one row")
        .expect("row parses");
    let cell = |name: &str| {
        let column = header
            .iter()
            .position(|h| h == name)
            .expect("column present");
        row[column].parse::<f64>().expect("number")
    };
    // 32 + 12 voxels of the "ring" ROI (see small_rtstruct_case), 1 × 1 × 2 mm each.
    assert_eq!(cell("original_shape_VoxelVolume"), 88.0);
    assert_eq!(&row[0], "series");
}

/// Writes a SEG of a 3 × 3 × 2 box (segment 1) for the small grid, with the
/// frames shifted along x by `labels_origin_shift_mm`. Returns the image, the
/// SEG path and the ids.
fn small_seg(dir: &Path, labels_origin_shift_mm: f64) -> (Volume, PathBuf, SeriesIds) {
    let image = small_grid();
    let mut labels = image.clone();
    labels.data.fill(0.0);
    labels
        .data
        .slice_mut(ndarray::s![2..5, 3..6, 1..3])
        .fill(1.0);
    labels.geometry.origin[0] += labels_origin_shift_mm;
    let ids = SeriesIds::new(12);
    let seg = dir.join("seg.dcm");
    write_seg(
        &labels,
        &seg,
        &ids,
        &[Segment {
            number: 1,
            label: "box",
            value: 1.0,
        }],
    );
    (image, seg, ids)
}

#[test]
fn seg_box_lands_on_voxels() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (image, seg, ids) = small_seg(dir.path(), 0.0);
    let (mask, label) = read_mask(
        &seg,
        &image,
        Some(ids.frame_of_reference.as_str()),
        &RoiSelector::Number(1),
        &GeometryTolerance::default(),
    )
    .expect("SEG reads");

    assert_eq!(label, 1);
    // The 3 × 3 × 2 box written above.
    assert_eq!(mask.data.iter().filter(|&&v| v == 1.0).count(), 18);
    assert_eq!(mask.data[[2, 3, 1]], 1.0);
    assert_eq!(mask.data[[4, 5, 2]], 1.0);
    assert_eq!(mask.data[[5, 5, 2]], 0.0);
}

#[test]
fn seg_off_grid_frames_are_rejected() {
    // Frames 0.3 mm off the voxel centres along x, beyond the 1e-3 mm tolerance.
    let dir = tempfile::tempdir().expect("temporary folder");
    let (image, seg, ids) = small_seg(dir.path(), 0.3);
    let error = read_mask(
        &seg,
        &image,
        Some(ids.frame_of_reference.as_str()),
        &RoiSelector::Number(1),
        &GeometryTolerance::default(),
    )
    .unwrap_err();

    let DicomError::Placement { message, .. } = dicom_error(error) else {
        panic!("expected a placement error");
    };
    assert!(
        message.contains("0.3000 mm from the nearest image voxel centre"),
        "{message}"
    );
}

#[test]
fn seg_fractional_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (image, seg, ids) = small_seg(dir.path(), 0.0);
    let mut object = dicom_object::open_file(&seg).expect("SEG opens");
    object.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::SEGMENTATION_TYPE,
        dicom_core::VR::CS,
        dicom_core::PrimitiveValue::from("FRACTIONAL"),
    ));
    object.write_to_file(&seg).expect("SEG rewritten");

    let error = read_mask(
        &seg,
        &image,
        Some(ids.frame_of_reference.as_str()),
        &RoiSelector::Number(1),
        &GeometryTolerance::default(),
    )
    .unwrap_err();
    let DicomError::Invalid { message, .. } = dicom_error(error) else {
        panic!("expected an invalid-file error");
    };
    assert!(
        message.contains("SegmentationType (0062,0001) is FRACTIONAL"),
        "{message}"
    );
}

#[test]
fn series_folder_skips_non_images() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;

    let dir = tempfile::tempdir().expect("temporary folder");
    let (series, _, ids) = small_rtstruct_case(dir.path(), None);
    // An RTSTRUCT and a directory-like object without Rows or
    // SeriesInstanceUID in the series folder must be skipped.
    write_rtstruct(
        &series.join("rtstruct.dcm"),
        &ids,
        &ids.frame_of_reference,
        &[],
    );
    let directory = dicom_object::InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.1.3.10"),
        ),
        DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("2.25.77"),
        ),
    ]);
    dicom_input::writer::save(directory, &series.join("DICOMDIR"));

    let volume = read_volume(&series).expect("series reads");
    assert_eq!(volume.data, small_grid().data);
}
