//! End-to-end: one worker over gRPC, one extraction round, and a cohort in
//! which every patient but the controls carries one kind of bad input. Each
//! bad patient is excluded with its own kind, field and reason. The controls
//! are extracted, and so is the patient whose input is unusual but valid
//! (NIfTI scaling); the round completes.
//!
//! The volumes are written here as small NIfTI-1 files, so that each defect
//! is exact: a 16³ grid of 1 mm voxels with a 6³ cube as the ROI.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use radstudy::client::CenterClient;
use radstudy::config::CenterRole;
use radstudy_e2e::{TestCenter, start_workers};
use radstudy_proto::v1::{ExtractRequest, ExtractionSettings};
use radstudy_worker::pseudonym::PseudonymKey;

const N: usize = 16;

/// NIfTI-1 datatype codes.
const INT16: i16 = 4;
const FLOAT32: i16 = 16;

/// A volume to write: its voxels in NIfTI order (i fastest), the datatype,
/// the scaling and the origin in mm.
struct Nifti {
    voxels: Vec<f64>,
    dims: [usize; 3],
    datatype: i16,
    slope: f32,
    inter: f32,
    origin: [f32; 3],
}

impl Nifti {
    fn new(voxels: Vec<f64>, datatype: i16) -> Self {
        Nifti {
            voxels,
            dims: [N, N, N],
            datatype,
            slope: 1.0,
            inter: 0.0,
            origin: [0.0; 3],
        }
    }

    /// Returns the file's bytes: a 348-byte header, 4 bytes of extension flag, then
    /// the voxels; the geometry is in the sform (1 mm voxels, axis-aligned).
    fn bytes(&self) -> Vec<u8> {
        let mut header = vec![0u8; 352];
        let put_i16 = |h: &mut Vec<u8>, at: usize, v: i16| {
            h[at..at + 2].copy_from_slice(&v.to_le_bytes());
        };
        let put_f32 = |h: &mut Vec<u8>, at: usize, v: f32| {
            h[at..at + 4].copy_from_slice(&v.to_le_bytes());
        };
        header[0..4].copy_from_slice(&348i32.to_le_bytes());

        // Dimensions, datatype, voxel size, data offset and scaling.
        put_i16(&mut header, 40, 3);
        for (axis, &dim) in self.dims.iter().enumerate() {
            put_i16(&mut header, 42 + 2 * axis, dim as i16);
        }
        for axis in 3..7 {
            put_i16(&mut header, 42 + 2 * axis, 1);
        }
        let bitpix = if self.datatype == INT16 { 16 } else { 32 };
        put_i16(&mut header, 70, self.datatype);
        put_i16(&mut header, 72, bitpix);
        put_f32(&mut header, 76, 1.0);
        for axis in 0..3 {
            put_f32(&mut header, 80 + 4 * axis, 1.0);
        }
        put_f32(&mut header, 108, 352.0);
        put_f32(&mut header, 112, self.slope);
        put_f32(&mut header, 116, self.inter);

        // sform_code 1 (scanner anatomical); qform_code stays 0.
        put_i16(&mut header, 254, 1);
        for row in 0..3 {
            let mut srow = [0f32; 4];
            srow[row] = 1.0;
            srow[3] = self.origin[row];
            for (column, value) in srow.iter().enumerate() {
                put_f32(&mut header, 280 + 16 * row + 4 * column, *value);
            }
        }
        header[344..348].copy_from_slice(b"n+1\0");

        // The voxels follow the header and the 4-byte extension flag.
        for &value in &self.voxels {
            if self.datatype == INT16 {
                header.extend_from_slice(&(value as i16).to_le_bytes());
            } else {
                header.extend_from_slice(&(value as f32).to_le_bytes());
            }
        }
        header
    }

    fn write_gz(&self, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        encoder.write_all(&self.bytes())?;
        encoder.finish()?;
        Ok(())
    }
}

fn index(i: usize, j: usize, k: usize) -> usize {
    i + N * (j + N * k)
}

fn in_cube(i: usize, j: usize, k: usize) -> bool {
    (5..11).contains(&i) && (5..11).contains(&j) && (5..11).contains(&k)
}

/// Control image `variant`: even whole numbers from 100 to 206, with a
/// texture that differs per variant.
fn control_image(variant: usize) -> Vec<f64> {
    let mut voxels = vec![0.0; N * N * N];
    for k in 0..N {
        for j in 0..N {
            for i in 0..N {
                let base = 2 * ((i * 7 + j * 13 + k * 29) % 50) + 100;
                let texture = 4 * variant * ((i + j + k) % 3);
                voxels[index(i, j, k)] = (base + texture) as f64;
            }
        }
    }
    voxels
}

/// Returns a label map with the ROI cube set to `label`.
fn cube_mask(label: f64) -> Vec<f64> {
    let mut voxels = vec![0.0; N * N * N];
    for k in 0..N {
        for j in 0..N {
            for i in 0..N {
                if in_cube(i, j, k) {
                    voxels[index(i, j, k)] = label;
                }
            }
        }
    }
    voxels
}

/// Writes the cohort's volumes under `root/t1` and its manifest.
fn write_cohort(root: &Path) -> anyhow::Result<()> {
    let folder = root.join("t1");
    std::fs::create_dir_all(&folder)?;
    let image = |id: &str| folder.join(format!("{id}_image.nii.gz"));
    let mask = |id: &str| folder.join(format!("{id}_mask.nii.gz"));
    let mut rows = Vec::new();
    let mut add = |id: &str, label: u8| {
        rows.push(format!(
            "{id},{label},t1/{id}_image.nii.gz,t1/{id}_mask.nii.gz"
        ))
    };

    // Six controls, three per outcome class.
    for variant in 1..=6 {
        let id = format!("control_{variant}");
        Nifti::new(control_image(variant), INT16).write_gz(&image(&id))?;
        Nifti::new(cube_mask(1.0), INT16).write_gz(&mask(&id))?;
        add(&id, (variant % 2) as u8);
    }

    // Stored values r with scl_slope 2 and scl_inter -100, so that the
    // physical values 2r - 100 are control_1's exactly.
    let stored: Vec<f64> = control_image(1).iter().map(|v| (v + 100.0) / 2.0).collect();
    let mut scaled = Nifti::new(stored, INT16);
    (scaled.slope, scaled.inter) = (2.0, -100.0);
    scaled.write_gz(&image("scaled"))?;
    Nifti::new(cube_mask(1.0), INT16).write_gz(&mask("scaled"))?;
    add("scaled", 1);

    // The mask's origin is 0.4 mm off the image grid (tolerance 0.001 mm).
    Nifti::new(control_image(2), INT16).write_gz(&image("off_grid"))?;
    let mut off_grid = Nifti::new(cube_mask(1.0), INT16);
    off_grid.origin = [0.4, 0.0, 0.0];
    off_grid.write_gz(&mask("off_grid"))?;
    add("off_grid", 0);

    // The mask grid starts 12 mm along every axis, so half the cube lies
    // beyond the image's last voxel (index 15).
    Nifti::new(control_image(2), INT16).write_gz(&image("outside"))?;
    let mut outside = Nifti::new(cube_mask(1.0), INT16);
    outside.origin = [12.0, 12.0, 12.0];
    outside.write_gz(&mask("outside"))?;
    add("outside", 0);

    // A float mask with 0.5 inside: an interpolated mask.
    Nifti::new(control_image(2), INT16).write_gz(&image("float_mask"))?;
    Nifti::new(cube_mask(0.5), FLOAT32).write_gz(&mask("float_mask"))?;
    add("float_mask", 0);

    // Label 2 only; the request selects label 1.
    Nifti::new(control_image(2), INT16).write_gz(&image("wrong_label"))?;
    Nifti::new(cube_mask(2.0), INT16).write_gz(&mask("wrong_label"))?;
    add("wrong_label", 0);

    // An empty mask, and a one-voxel ROI.
    Nifti::new(control_image(2), INT16).write_gz(&image("empty"))?;
    Nifti::new(vec![0.0; N * N * N], INT16).write_gz(&mask("empty"))?;
    add("empty", 0);
    Nifti::new(control_image(2), INT16).write_gz(&image("one_voxel"))?;
    let mut one = vec![0.0; N * N * N];
    one[index(8, 8, 8)] = 1.0;
    Nifti::new(one, INT16).write_gz(&mask("one_voxel"))?;
    add("one_voxel", 0);

    // int16 extremes inside the ROI: -32768 and 32767 alternate, which at
    // bin width 25 spans 2622 grey levels, over the cap of 1000.
    let mut extremes = control_image(2);
    for (n, value) in extremes.iter_mut().enumerate() {
        *value = if n % 2 == 0 { -32768.0 } else { 32767.0 };
    }
    Nifti::new(extremes, INT16).write_gz(&image("int16_extremes"))?;
    Nifti::new(cube_mask(1.0), INT16).write_gz(&mask("int16_extremes"))?;
    add("int16_extremes", 1);

    // One NaN, and one +Inf, inside the ROI of a float image.
    for (id, bad) in [("nan_voxel", f64::NAN), ("inf_voxel", f64::INFINITY)] {
        let mut voxels = control_image(3);
        voxels[index(7, 7, 7)] = bad;
        Nifti::new(voxels, FLOAT32).write_gz(&image(id))?;
        Nifti::new(cube_mask(1.0), INT16).write_gz(&mask(id))?;
        add(id, 1);
    }

    // The image's gzip stream cut in half.
    Nifti::new(control_image(4), INT16).write_gz(&image("truncated"))?;
    let bytes = std::fs::read(image("truncated"))?;
    std::fs::write(image("truncated"), &bytes[..bytes.len() / 2])?;
    Nifti::new(cube_mask(1.0), INT16).write_gz(&mask("truncated"))?;
    add("truncated", 1);

    // Manifest rows: one ragged (no mask cell), one id listed twice.
    let mut text = String::from("patient_id,label,T1_image,T1_mask\n");
    for row in &rows {
        text.push_str(row);
        text.push('\n');
    }
    text.push_str("ragged,1,t1/control_1_image.nii.gz\n");
    text.push_str("twice,0,t1/control_2_image.nii.gz,t1/control_2_mask.nii.gz\n");
    text.push_str("twice,1,t1/control_3_image.nii.gz,t1/control_3_mask.nii.gz\n");
    std::fs::write(root.join("manifest.csv"), text)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_round_bad_inputs_excluded_with_reasons() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("site");
    write_cohort(&root)?;
    let running = start_workers(
        dir.path(),
        &[TestCenter {
            id: "A".into(),
            role: CenterRole::Development,
            data_root: root.clone(),
            manifest: root.join("manifest.csv"),
            share_feature_tables: true,
        }],
    )?;
    // start_workers writes the center's pseudonym key beside its config.
    let key = PseudonymKey::load(&dir.path().join("A.key"))?;
    let pseudonym = |id: &str| key.pseudonym("A", id);

    let endpoint = &running.centers[0].endpoint;
    let mut client = CenterClient::connect("A", endpoint, Duration::from_secs(10)).await?;
    let request = ExtractRequest {
        study_id: "bad-input-catalogue".into(),
        round_id: "0c6f3a52-2a4c-4c39-9d7e-5b3f0f6f1a01".into(),
        sequences: vec!["T1".into()],
        settings: Some(ExtractionSettings {
            feature_classes: vec!["firstorder".into(), "shape".into(), "glcm".into()],
            bin_width: 25.0,
            label: 1,
            parameters_json: String::new(),
        }),
        ..Default::default()
    };
    let outcome = client
        .extract(request, Duration::from_secs(120), |_, _| {})
        .await?;

    let by_patient: BTreeMap<String, (String, String, String)> = outcome
        .exclusions
        .iter()
        .map(|e| {
            (
                e.pseudonym.clone(),
                (e.kind.clone(), e.field.clone(), e.reason.clone()),
            )
        })
        .collect();
    let excluded = |id: &str| {
        by_patient
            .get(&pseudonym(id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} was not excluded: {:?}", outcome.exclusions))
    };
    // Each case: the kind and field, and the words of the reason that name
    // the defect; the messages themselves are the worker's.
    let expected: [(&str, &str, &str, &[&str]); 11] = [
        ("off_grid", "geometry_mismatch", "T1_mask", &["0.4", "mm"]),
        ("outside", "geometry_mismatch", "T1_mask", &["outside"]),
        (
            "float_mask",
            "mask_invalid",
            "T1_mask",
            &["0.5", "not an integer"],
        ),
        (
            "wrong_label",
            "mask_invalid",
            "T1_mask",
            &["label 1", "labels present: 2;"],
        ),
        ("empty", "mask_invalid", "T1_mask", &["mask is empty"]),
        ("one_voxel", "roi_too_small", "T1_mask", &["1 voxel"]),
        (
            "int16_extremes",
            "intensity_invalid",
            "T1_image",
            &["2622", "1000"],
        ),
        (
            "nan_voxel",
            "intensity_invalid",
            "T1_image",
            &["1 of 216", "NaN"],
        ),
        (
            "inf_voxel",
            "intensity_invalid",
            "T1_image",
            &["1 of 216", "infinite"],
        ),
        ("truncated", "file_invalid", "T1_image", &["NIfTI"]),
        (
            "ragged",
            "manifest_invalid",
            "",
            &["3 fields", "header has 4"],
        ),
    ];
    for (id, kind, field, words) in expected {
        let (got_kind, got_field, reason) = excluded(id);
        assert_eq!(
            (got_kind.as_str(), got_field.as_str()),
            (kind, field),
            "{id}: {reason}"
        );
        for word in words {
            assert!(reason.contains(word), "{id}: {word:?} not in {reason:?}");
        }
    }
    let (kind, _, reason) = excluded("twice");
    assert_eq!(kind, "manifest_invalid", "{reason}");
    assert!(reason.contains("2 rows"), "{reason}");

    // 6 controls and the scaled image are extracted; 12 patients excluded.
    assert_eq!(outcome.summary.n_extracted, 7, "{:?}", outcome.exclusions);
    assert_eq!(
        by_patient.len(),
        12,
        "{:?}",
        by_patient.keys().collect::<Vec<_>>()
    );

    // scl_slope and scl_inter are applied: the scaled image's physical
    // values equal control_1's, so every feature is the same float, bit
    // for bit (the same voxels through the same code).
    let table = client
        .fetch_feature_table(
            "bad-input-catalogue",
            "0c6f3a52-2a4c-4c39-9d7e-5b3f0f6f1a01",
        )
        .await?;
    let row = |id: &str| {
        let wanted = pseudonym(id);
        table
            .rows
            .iter()
            .find(|row| row.pseudonym == wanted)
            .map(|row| row.values.clone())
            .unwrap_or_else(|| panic!("no table row for {id}"))
    };
    let (scaled, control) = (row("scaled"), row("control_1"));
    assert_eq!(scaled.len(), table.feature_names.len());
    let mean = table
        .feature_names
        .iter()
        .position(|name| name.ends_with("firstorder_Mean"))
        .expect("firstorder Mean column");
    assert_eq!(
        scaled.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        control.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(scaled[mean], row("control_2")[mean]);
    Ok(())
}
