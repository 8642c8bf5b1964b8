use super::*;
use nifti::{InMemNiftiObject, IntoNdArray, NiftiObject, NiftiType, ReaderOptions, Unit, XForm};

/// Default geometry and sequences with few patients, so tests stay fast.
fn small_spec(seed: u64) -> SyntheticSpec {
    let mut spec = SyntheticSpec::demo_default();
    spec.seed = seed;
    spec.centers[0].n_patients = 5;
    spec.centers[1].n_patients = 4;
    spec.centers[1].positive_fraction = 0.25;
    spec
}

fn read_nifti(path: &Path) -> InMemNiftiObject {
    ReaderOptions::new()
        .read_file(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn read_mask(path: &Path) -> Array3<u8> {
    read_nifti(path)
        .into_volume()
        .into_ndarray::<u8>()
        .expect("mask converts to u8")
        .into_dimensionality()
        .expect("mask is 3-D")
}

/// Returns (patient_id, label, relative paths) for each manifest row.
fn read_manifest(path: &Path) -> (String, Vec<(String, u8, Vec<String>)>) {
    let text = fs::read_to_string(path).expect("manifest is readable");
    let mut lines = text.lines();
    let header = lines.next().expect("manifest has a header").to_string();
    let rows = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let label = fields[1].parse().expect("label is 0 or 1");
            let paths = fields[2..].iter().map(|field| field.to_string()).collect();
            (fields[0].to_string(), label, paths)
        })
        .collect();
    (header, rows)
}

/// Lists every file under `root` with its bytes, sorted by path.
fn read_tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("directory is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = fs::read(&path).expect("file is readable");
                let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                files.push((relative, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Mann–Whitney AUC of `scores` for label 1 against label 0, ties counted half.
fn auc(scores: &[f64], labels: &[u8]) -> f64 {
    let mut wins = 0.0;
    let mut pairs = 0.0;
    for (score_pos, _) in scores.iter().zip(labels).filter(|(_, label)| **label == 1) {
        for (score_neg, _) in scores.iter().zip(labels).filter(|(_, label)| **label == 0) {
            pairs += 1.0;
            if score_pos > score_neg {
                wins += 1.0;
            } else if score_pos == score_neg {
                wins += 0.5;
            }
        }
    }
    wins / pairs
}

/// Returns the ROI standard deviation and 90th percentile (nearest rank).
fn roi_sd_and_p90(image: &Array3<i16>, mask: &Array3<u8>) -> (f64, f64) {
    let mut values: Vec<f64> = image
        .iter()
        .zip(mask)
        .filter(|(_, label)| **label == 1)
        .map(|(&value, _)| f64::from(value))
        .collect();
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f64>()
        / count;
    values.sort_by(f64::total_cmp);
    let rank = ((0.9 * count).ceil() as usize).clamp(1, values.len());
    (variance.sqrt(), values[rank - 1])
}

#[test]
fn manifest_has_header_and_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = small_spec(7);
    let centers = generate(dir.path(), &spec).expect("generate");

    assert_eq!(centers.len(), 2);
    for (center, center_spec) in centers.iter().zip(&spec.centers) {
        assert_eq!(center.center_id, center_spec.center_id);
        assert_eq!(center.data_root, dir.path().join(&center_spec.center_id));
        assert_eq!(center.manifest, center.data_root.join("manifest.csv"));
        assert_eq!(center.n_patients, center_spec.n_patients);

        let (header, rows) = read_manifest(&center.manifest);
        assert_eq!(
            header,
            "patient_id,label,T1W_image,T1W_mask,T2FS_image,T2FS_mask"
        );
        assert_eq!(rows.len(), center_spec.n_patients);
        for (index, (patient_id, _, paths)) in rows.iter().enumerate() {
            let expected_id = format!("{}-{:03}", center_spec.center_id, index + 1);
            assert_eq!(patient_id, &expected_id);
            assert_eq!(
                paths,
                &vec![
                    format!("{expected_id}/T1W_image.nii.gz"),
                    format!("{expected_id}/T1W_mask.nii.gz"),
                    format!("{expected_id}/T2FS_image.nii.gz"),
                    format!("{expected_id}/T2FS_mask.nii.gz"),
                ]
            );
        }
    }
}

#[test]
fn manifest_paths_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let centers = generate(dir.path(), &small_spec(7)).expect("generate");

    for center in &centers {
        let (_, rows) = read_manifest(&center.manifest);
        for (_, _, paths) in rows {
            for path in paths {
                let full = center.data_root.join(&path);
                assert!(full.is_file(), "{} is missing", full.display());
            }
        }
    }
}

#[test]
fn positive_count_matches_fraction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = small_spec(7);
    let centers = generate(dir.path(), &spec).expect("generate");

    // round(0.4 × 5) = 2 and round(0.25 × 4) = 1.
    for (center, expected) in centers.iter().zip([2, 1]) {
        assert_eq!(center.n_positive, expected, "center {}", center.center_id);
        let (_, rows) = read_manifest(&center.manifest);
        let positives = rows.iter().filter(|(_, label, _)| *label == 1).count();
        assert_eq!(positives, expected, "manifest of {}", center.center_id);
    }

    // Rounding cases, including a half that rounds away from zero.
    let cases = [
        (60, 0.4, 24),
        (30, 0.3, 9),
        (5, 0.5, 3),
        (7, 0.0, 0),
        (7, 1.0, 7),
    ];
    for (n_patients, positive_fraction, expected) in cases {
        let center = SyntheticCenterSpec {
            n_patients,
            positive_fraction,
            ..spec.centers[0].clone()
        };
        let labels = assign_labels(spec.seed, &center);
        assert_eq!(labels.len(), n_patients);
        let positives = labels.iter().filter(|&&label| label == 1).count();
        assert_eq!(
            positives, expected,
            "n = {n_patients}, fraction = {positive_fraction}"
        );
    }
}

#[test]
fn labels_are_shuffled() {
    let center = SyntheticSpec::demo_default().centers[0].clone();
    let labels = assign_labels(1729, &center);
    let sorted_first: Vec<u8> = (0..60).map(|index| u8::from(index < 24)).collect();
    assert_ne!(labels, sorted_first);
    assert_ne!(labels, assign_labels(1730, &center));
}

#[test]
fn same_seed_gives_identical_bytes() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    generate(first.path(), &small_spec(11)).expect("first run");
    generate(second.path(), &small_spec(11)).expect("second run");

    let first_files = read_tree(first.path());
    let second_files = read_tree(second.path());
    // 9 patients × 2 sequences × (image + mask) + 2 manifests.
    assert_eq!(first_files.len(), 38);
    assert_eq!(first_files.len(), second_files.len());
    for ((first_path, first_bytes), (second_path, second_bytes)) in
        first_files.iter().zip(&second_files)
    {
        assert_eq!(first_path, second_path);
        assert!(
            first_bytes == second_bytes,
            "{} differs",
            first_path.display()
        );
    }
}

#[test]
fn different_seed_changes_images() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    generate(first.path(), &small_spec(11)).expect("first run");
    generate(second.path(), &small_spec(12)).expect("second run");

    let first_files = read_tree(first.path());
    let second_files = read_tree(second.path());
    assert_eq!(first_files.len(), second_files.len());
    for ((path, first_bytes), (_, second_bytes)) in first_files.iter().zip(&second_files) {
        if path.to_string_lossy().ends_with("_image.nii.gz") {
            assert!(
                first_bytes != second_bytes,
                "{} is unchanged",
                path.display()
            );
        }
    }
}

#[test]
fn mask_nonempty_and_off_border() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = small_spec(3);
    let centers = generate(dir.path(), &spec).expect("generate");
    let [nx, ny, nz] = spec.dims;

    for center in &centers {
        let (_, rows) = read_manifest(&center.manifest);
        for (patient_id, _, paths) in rows {
            let mask = read_mask(&center.data_root.join(&paths[1]));
            assert_eq!(mask.dim(), (nx, ny, nz), "{patient_id}");

            let lesion_voxels = mask.iter().filter(|&&label| label == 1).count();
            assert!(lesion_voxels > 100, "{patient_id}: {lesion_voxels} voxels");
            assert!(mask.iter().all(|&label| label <= 1), "{patient_id}");

            for ((i, j, k), &label) in mask.indexed_iter() {
                let on_border =
                    i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1;
                assert!(
                    !(on_border && label == 1),
                    "{patient_id}: lesion touches the border at ({i}, {j}, {k})"
                );
            }

            let other_mask = read_mask(&center.data_root.join(&paths[3]));
            assert_eq!(mask, other_mask, "{patient_id}: sequences share the mask");
        }
    }
}

#[test]
fn header_geometry_matches_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = small_spec(5);
    spec.dims = [48, 56, 22];
    spec.spacing_mm = [1.0, 0.8, 2.5];
    spec.centers.truncate(1);
    spec.centers[0].n_patients = 1;
    generate(dir.path(), &spec).expect("generate");

    let patient_dir = dir.path().join("A").join("A-001");
    let cases = [
        ("T1W_image.nii.gz", NiftiType::Int16),
        ("T1W_mask.nii.gz", NiftiType::Uint8),
    ];
    for (file, datatype) in cases {
        let object = read_nifti(&patient_dir.join(file));
        let header = object.header();
        assert_eq!(header.data_type().expect("datatype"), datatype, "{file}");
        assert_eq!(header.dim().expect("dim"), &[48, 56, 22], "{file}");
        assert_eq!(&header.pixdim[1..4], &[1.0, 0.8, 2.5], "{file}");
        assert_eq!(header.xyzt_units, Unit::Mm as u8, "{file}");
        assert_eq!(header.scl_slope, 1.0, "{file}");
        assert_eq!(header.scl_inter, 0.0, "{file}");

        // Voxel (0, 0, 0) sits at -(n - 1) × spacing / 2 on each axis.
        let origin = [-23.5f32, -22.0, -26.25];
        assert_eq!(header.sform_code, XForm::ScannerAnat as i16, "{file}");
        assert_eq!(header.srow_x, [1.0, 0.0, 0.0, origin[0]], "{file}");
        assert_eq!(header.srow_y, [0.0, 0.8, 0.0, origin[1]], "{file}");
        assert_eq!(header.srow_z, [0.0, 0.0, 2.5, origin[2]], "{file}");
        assert_eq!(header.qform_code, XForm::ScannerAnat as i16, "{file}");
        assert_eq!(header.pixdim[0], 1.0, "{file}: qfac");
        assert_eq!(
            [header.quatern_b, header.quatern_c, header.quatern_d],
            [0.0, 0.0, 0.0],
            "{file}"
        );
        assert_eq!(
            [header.quatern_x, header.quatern_y, header.quatern_z],
            origin,
            "{file}"
        );
    }
}

#[test]
fn sequence_contrast_direction() {
    let spec = small_spec(9);
    let contrasts = validate_spec(&spec).expect("valid spec");
    let center = &spec.centers[0];

    for (patient, label) in [("A-001", 0), ("A-002", 1)] {
        let volumes = synthesize_patient(&spec, center, &contrasts, patient, label);
        let mean_inside_and_outside = |image: &Array3<i16>| {
            let (mut inside, mut outside) = ((0.0, 0.0), (0.0, 0.0));
            for (&value, &lesion) in image.iter().zip(&volumes.mask) {
                let sums = if lesion == 1 {
                    &mut inside
                } else {
                    &mut outside
                };
                sums.0 += f64::from(value);
                sums.1 += 1.0;
            }
            (inside.0 / inside.1, outside.0 / outside.1)
        };

        let (t1_lesion, t1_background) = mean_inside_and_outside(&volumes.images[0]);
        assert!(
            t1_lesion < t1_background - 50.0,
            "{patient} T1W: lesion {t1_lesion:.0}, background {t1_background:.0}"
        );
        let (t2_lesion, t2_background) = mean_inside_and_outside(&volumes.images[1]);
        assert!(
            t2_lesion > t2_background + 100.0,
            "{patient} T2FS: lesion {t2_lesion:.0}, background {t2_background:.0}"
        );
    }
}

#[test]
fn roi_features_separate_classes() {
    let spec = SyntheticSpec::demo_default();
    let contrasts = validate_spec(&spec).expect("valid spec");

    for center in &spec.centers {
        let labels = assign_labels(spec.seed, center);
        let mut features = vec![Vec::new(); 2 * contrasts.len()];
        for (index, &label) in labels.iter().enumerate() {
            let patient_id = format!("{}-{:03}", center.center_id, index + 1);
            let volumes = synthesize_patient(&spec, center, &contrasts, &patient_id, label);
            for (sequence, image) in volumes.images.iter().enumerate() {
                let (sd, p90) = roi_sd_and_p90(image, &volumes.mask);
                features[2 * sequence].push(sd);
                features[2 * sequence + 1].push(p90);
            }
        }

        for (sequence, contrast) in contrasts.iter().enumerate() {
            let sd_auc = auc(&features[2 * sequence], &labels);
            let p90_auc = auc(&features[2 * sequence + 1], &labels);
            eprintln!(
                "center {} {}: AUC of ROI SD {sd_auc:.3}, of ROI p90 {p90_auc:.3}",
                center.center_id, contrast.name
            );
            // Realistic, not perfect: clearly above chance, clearly below 1.
            assert!((0.65..=0.9).contains(&sd_auc), "ROI SD AUC {sd_auc:.3}");
        }
    }
}

#[test]
fn invalid_spec_rejected() {
    type SpecEdit = fn(&mut SyntheticSpec);
    let cases: Vec<(&str, SpecEdit)> = vec![
        ("unknown sequence", |spec| spec.sequences[0] = "DWI".into()),
        ("duplicate sequence", |spec| {
            spec.sequences[1] = "T1W".into()
        }),
        ("no sequences", |spec| spec.sequences.clear()),
        ("no centers", |spec| spec.centers.clear()),
        ("duplicate center", |spec| {
            spec.centers[1].center_id = "A".into()
        }),
        ("center id with slash", |spec| {
            spec.centers[0].center_id = "A/B".into()
        }),
        ("empty center id", |spec| spec.centers[0].center_id.clear()),
        ("zero patients", |spec| spec.centers[0].n_patients = 0),
        ("fraction above 1", |spec| {
            spec.centers[0].positive_fraction = 1.5
        }),
        ("NaN fraction", |spec| {
            spec.centers[0].positive_fraction = f64::NAN
        }),
        ("zero gain", |spec| spec.centers[0].gain = 0.0),
        ("negative noise", |spec| spec.centers[0].noise_sd = -1.0),
        ("zero spacing", |spec| spec.spacing_mm[2] = 0.0),
        ("too few slices", |spec| spec.dims[2] = 12),
    ];

    for (case, mutate) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = small_spec(1);
        mutate(&mut spec);
        let result = generate(dir.path(), &spec);
        assert!(
            matches!(result, Err(SynthError::InvalidSpec(_))),
            "{case}: {result:?}"
        );
        let written = fs::read_dir(dir.path()).expect("tempdir").count();
        assert_eq!(written, 0, "{case}: files written before validation");
    }
}

#[test]
fn minimum_dims_boundary() {
    // The smallest sizes named in the `dims` docs for 0.9 and 3 mm spacing.
    let mut spec = small_spec(1);
    spec.dims = [46, 46, 18];
    assert!(validate_spec(&spec).is_ok(), "46 × 46 × 18 is large enough");

    for dims in [[45, 46, 18], [46, 45, 18], [46, 46, 17]] {
        spec.dims = dims;
        assert!(
            matches!(validate_spec(&spec), Err(SynthError::InvalidSpec(_))),
            "{dims:?} is too small"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    spec.dims = [46, 46, 18];
    spec.centers[0].n_patients = 3;
    spec.centers.truncate(1);
    let centers = generate(dir.path(), &spec).expect("generate at the minimum size");
    let (_, rows) = read_manifest(&centers[0].manifest);
    for (patient_id, _, paths) in rows {
        let mask = read_mask(&centers[0].data_root.join(&paths[1]));
        let on_border = mask.indexed_iter().any(|((i, j, k), &label)| {
            label == 1 && (i == 0 || j == 0 || k == 0 || i == 45 || j == 45 || k == 17)
        });
        assert!(!on_border, "{patient_id}: lesion touches the border");
    }
}

#[test]
fn unwritable_output_reports_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-directory");
    fs::write(&blocker, b"").expect("write blocker file");

    match generate(&blocker, &small_spec(1)) {
        Err(SynthError::CreateDir { path, .. }) => assert_eq!(path, blocker.join("A")),
        other => panic!("expected CreateDir error, got {other:?}"),
    }
}
