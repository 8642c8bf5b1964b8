use super::*;
use ndarray::Array3;

/// Spacing of the synthetic volumes, in mm.
const SPACING: [f32; 3] = [1.0, 1.0, 2.0];
/// World position of voxel (0, 0, 0) of every synthetic volume, in mm.
const ORIGIN: [f32; 3] = [10.0, -5.0, 3.0];
/// Size of the synthetic image.
const IMAGE_DIMS: [usize; 3] = [8, 8, 6];

/// Writes `data` as a NIfTI-1 file whose sform places voxel (i, j, k) at
/// `ORIGIN + (i, j, k) × SPACING`.
fn write_nifti(path: &Path, data: &Array3<i16>) {
    let [sx, sy, sz] = SPACING;
    let [ox, oy, oz] = ORIGIN;
    let header = nifti::NiftiHeader {
        pixdim: [1.0, sx, sy, sz, 1.0, 1.0, 1.0, 1.0],
        xyzt_units: nifti::Unit::Mm as u8,
        sform_code: nifti::XForm::ScannerAnat as i16,
        srow_x: [sx, 0.0, 0.0, ox],
        srow_y: [0.0, sy, 0.0, oy],
        srow_z: [0.0, 0.0, sz, oz],
        ..nifti::NiftiHeader::default()
    };
    nifti::writer::WriterOptions::new(path)
        .reference_header(&header)
        .write_nifti(data)
        .expect("synthetic NIfTI file is written");
}

/// Writes an image with varied grey levels and returns its path.
fn write_image(folder: &Path) -> PathBuf {
    let image = Array3::from_shape_fn(IMAGE_DIMS, |(i, j, k)| {
        ((i * 7 + j * 13 + k * 29) % 50) as i16 * 10
    });
    let path = folder.join("image.nii");
    write_nifti(&path, &image);
    path
}

/// Writes a mask of size `dims` with label 1 on the box of mask voxels `[low, high)` and
/// returns its path.
fn write_box_mask(
    folder: &Path,
    name: &str,
    dims: [usize; 3],
    low: [usize; 3],
    high: [usize; 3],
) -> PathBuf {
    let mask = Array3::from_shape_fn(dims, |(i, j, k)| {
        let index = [i, j, k];
        i16::from((0..3).all(|axis| low[axis] <= index[axis] && index[axis] < high[axis]))
    });
    let path = folder.join(name);
    write_nifti(&path, &mask);
    path
}

/// Extracts `image` and `mask` with PyRadiomics' default parameters.
fn extract(image: &Path, mask: &Path) -> Result<Vec<(String, f64)>, CaseError> {
    let parameters = load_parameters(None, None).expect("the default parameters are valid");
    let case = Case {
        id: "synthetic".to_string(),
        image: image.to_path_buf(),
        mask: mask.to_path_buf(),
        label: None,
    };
    extract_case(
        &case,
        &parameters.settings,
        &parameters.options,
        &parameters.image_types,
    )
}

/// Returns the features with their values as bits, so that NaN equals NaN.
fn feature_bits(features: &[(String, f64)]) -> Vec<(String, u64)> {
    features
        .iter()
        .map(|(name, value)| (name.clone(), value.to_bits()))
        .collect()
}

#[test]
fn larger_grid_roi_inside_is_cropped() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let image = write_image(folder.path());
    let same_grid = write_box_mask(folder.path(), "same.nii", IMAGE_DIMS, [2, 2, 1], [6, 6, 5]);
    // Same origin and spacing, 4 to 5 voxels more along each axis, the ROI on the same
    // voxels: cropping it to the image gives the same-grid mask.
    let larger_grid = write_box_mask(
        folder.path(),
        "larger.nii",
        [12, 13, 9],
        [2, 2, 1],
        [6, 6, 5],
    );

    let expected = extract(&image, &same_grid).expect("the same-grid mask is accepted");
    let cropped = extract(&image, &larger_grid).expect("the larger-grid mask is accepted");
    assert!(
        expected
            .iter()
            .any(|(name, _)| name == "original_shape_VoxelVolume"),
        "{expected:?}"
    );
    assert_eq!(feature_bits(&cropped), feature_bits(&expected));
}

#[test]
fn larger_grid_roi_outside_is_rejected() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let image = write_image(folder.path());
    // The box spans mask i = 5 to 9, and the image ends at i = 7: i = 8 and 9 of the
    // 4 × 4 section, 2 × 4 × 4 = 32 voxels, lie outside.
    let mask = write_box_mask(
        folder.path(),
        "larger.nii",
        [12, 13, 9],
        [5, 2, 1],
        [10, 6, 5],
    );

    let error = extract(&image, &mask).unwrap_err();
    let CaseError::Placement { path, source } = &error else {
        panic!("expected a placement error, got {error}");
    };
    assert_eq!(path, &mask);
    assert_eq!(
        source,
        &PlacementError::OutsideImage {
            label: 1,
            outside: 32,
            offset: [0, 0, 0],
            mask_dims: [12, 13, 9],
            image_dims: IMAGE_DIMS,
        }
    );
    let message = error.to_string();
    assert!(message.contains(&mask.display().to_string()), "{message}");
    assert!(message.contains("32 voxels of label 1"), "{message}");
    assert!(
        message.contains("check that the mask belongs to this image"),
        "{message}"
    );
}

#[test]
fn case_id_strips_image_extensions() {
    assert_eq!(case_id(Path::new("/data/ct.nii.gz")), "ct");
    assert_eq!(case_id(Path::new("scan.v2.nrrd")), "scan.v2");
    assert_eq!(case_id(Path::new("series_folder")), "series_folder");
}

#[test]
fn case_id_option_accepts_plain_id() {
    assert_eq!(parse_case_id(" lesion 07 "), Ok("lesion 07".to_string()));
}

#[test]
fn case_id_option_rejects_empty() {
    let error = parse_case_id("  ").unwrap_err();
    assert!(error.contains("empty"), "{error}");
}

#[test]
fn case_id_option_rejects_csv_separators() {
    for text in ["a,b", "a\nb", "a\r\nb"] {
        let error = parse_case_id(text).unwrap_err();
        assert!(error.contains("comma or a line break"), "{text:?}: {error}");
    }
    let error = parse_case_id("a,b").unwrap_err();
    assert!(error.contains("\"a_b\""), "{error}");
}
