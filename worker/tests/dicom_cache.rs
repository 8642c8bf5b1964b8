//! The result cache on DICOM input: the key covers every file of a series
//! or a multi-frame file, and a restarted worker returns a round over a
//! DICOM series and RTSTRUCT from the cache until a slice changes. The
//! DICOM files are written in the test (see `dicom_input.rs`).

mod dicom_input {
    // Each test binary that shares the writer uses only part of it.
    #[allow(dead_code)]
    pub mod writer;
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dicom_input::writer::{
    RoiContours, SeriesIds, write_multi_frame, write_rtstruct, write_series,
};
use ndarray::Array3;
use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{
    ExtractEvent, ExtractRequest, ExtractionSettings as ProtoSettings, FeatureRow,
    FetchFeatureTableRequest, extract_event,
};
use radstudy_worker::audit::AuditLog;
use radstudy_worker::cache::{CacheKey, KeyError, KeyInputs, ResultCache};
use radstudy_worker::config::{GeometryTolerance, Policy, WorkerConfig};
use radstudy_worker::feature_request::FeatureRequest;
use radstudy_worker::features::{ExtractionSettings, FeatureClass};
use radstudy_worker::image::{Geometry, Volume};
use radstudy_worker::manifest::{Manifest, SequenceFiles};
use radstudy_worker::pseudonym::PseudonymKey;
use radstudy_worker::service::{WorkerService, WorkerState};
use tokio_stream::StreamExt;
use tonic::Request;

/// Returns a 12 × 10 × `slices` grid of 1 mm pixels and 2 mm slices, LPS
/// axis aligned from LPS (0, 0, 0), so LPS (x, y, z) is index (x, y, z / 2).
fn grid(slices: usize) -> Volume {
    Volume {
        data: Array3::from_shape_fn((12, 10, slices), |(i, j, k)| (i + 2 * j + 3 * k) as f64),
        geometry: Geometry {
            dims: [12, 10, slices],
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

/// One case under a data root: a 4-slice series and an RTSTRUCT with the
/// ROIs "box" (slice k = 1) and "ring" (slices k = 2 and 3).
struct Case {
    _folder: tempfile::TempDir,
    root: PathBuf,
    ids: SeriesIds,
    series: PathBuf,
    slices: Vec<PathBuf>,
    rtstruct: PathBuf,
}

fn case() -> Case {
    let folder = tempfile::tempdir().expect("temporary folder");
    let root = std::fs::canonicalize(folder.path())
        .expect("canonical folder")
        .join("data");
    let ids = SeriesIds::new(31);
    let series = root.join("case").join("series");
    let slices = write_series(&grid(4), &series, &ids, 1.0, 0.0);
    let rtstruct = root.join("case").join("rtstruct.dcm");
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
            // 6 × 6 centres on z = 4 and 4 × 2 centres on z = 6: 44 voxels.
            contours: vec![
                rectangle([0.5, 6.5], [0.5, 6.5], 4.0),
                rectangle([0.5, 4.5], [0.5, 2.5], 6.0),
            ],
        },
    ];
    write_rtstruct(&rtstruct, &ids, &ids.frame_of_reference, &rois);
    Case {
        _folder: folder,
        root,
        ids,
        series,
        slices,
        rtstruct,
    }
}

/// Replaces slice `k` of the case's series with the same slice of `volume`.
fn replace_slice(case: &Case, volume: &Volume, k: usize) {
    let scratch = tempfile::tempdir().expect("temporary folder");
    let written = write_series(volume, scratch.path(), &case.ids, 1.0, 0.0);
    std::fs::copy(&written[k], &case.slices[k]).expect("slice replaced");
}

fn request() -> FeatureRequest {
    FeatureRequest::from_settings(ExtractionSettings {
        classes: vec![FeatureClass::Shape, FeatureClass::FirstOrder],
        bin_width: 25.0,
        label: 1,
    })
}

/// Returns the cache key of the case's series with `mask` under `cache`.
fn key_of(
    cache: &ResultCache,
    case: &Case,
    image: &Path,
    mask: &Path,
) -> Result<CacheKey, KeyError> {
    let (features, tolerance) = (request(), GeometryTolerance::default());
    let files = SequenceFiles {
        image: image.to_path_buf(),
        mask: mask.to_path_buf(),
        label: Some("box".parse().expect("a name")),
    };
    let inputs = KeyInputs {
        key_identity: "identity-of-key-1",
        pseudonym: "T-0123456789abcdef",
        sequence: "MR",
        features: &features,
        tolerance: &tolerance,
        perturbation: None,
        regions: &[],
        habitat: None,
        files: &files,
    };
    cache.key(&inputs, &case.root)
}

#[test]
fn series_key_follows_every_slice() {
    let case = case();
    let cache_folder = tempfile::tempdir().expect("temporary folder");
    let cache = ResultCache::open(cache_folder.path());
    let key = |image: &Path| key_of(&cache, &case, image, &case.rtstruct);
    let base = key(&case.series).expect("the series hashes");
    // 4 slices and the scanned folder, then the RTSTRUCT.
    assert_eq!(base.stamps.len(), 6);
    assert_eq!(
        key(&case.series).expect("hash").digest,
        base.digest,
        "unchanged files give the same key"
    );
    assert_eq!(
        key(&case.slices[0]).expect("hash").digest,
        base.digest,
        "one file of the series stands for the same files as the folder"
    );

    // A non-image object in the folder is skipped by the reader, so the
    // key stays.
    std::fs::copy(&case.rtstruct, case.series.join("rtstruct_copy.dcm")).expect("copy");
    std::fs::write(case.series.join("notes.txt"), "not DICOM").expect("text file");
    assert_eq!(key(&case.series).expect("hash").digest, base.digest);

    // One voxel of slice 2 changes.
    let mut changed = grid(4);
    changed.data[[5, 5, 2]] += 1.0;
    replace_slice(&case, &changed, 2);
    let modified = key(&case.series).expect("hash");
    assert_ne!(modified.digest, base.digest, "a modified slice");
    replace_slice(&case, &grid(4), 2);
    assert_eq!(
        key(&case.series).expect("hash").digest,
        base.digest,
        "the original slice restores the key"
    );

    // A fifth slice of the same series is added, then removed again, then
    // the last original slice is removed.
    let scratch = tempfile::tempdir().expect("temporary folder");
    let five = write_series(&grid(5), scratch.path(), &case.ids, 1.0, 0.0);
    let added_path = case.series.join("slice_extra.dcm");
    std::fs::copy(&five[4], &added_path).expect("slice added");
    let added = key(&case.series).expect("hash");
    assert_ne!(added.digest, base.digest, "an added slice");
    std::fs::remove_file(&added_path).expect("slice removed");
    assert_eq!(key(&case.series).expect("hash").digest, base.digest);
    std::fs::remove_file(&case.slices[3]).expect("slice removed");
    let removed = key(&case.series).expect("hash");
    assert_ne!(removed.digest, base.digest, "a removed slice");
}

#[test]
fn series_key_of_two_series_folder_is_error() {
    let case = case();
    let cache_folder = tempfile::tempdir().expect("temporary folder");
    let cache = ResultCache::open(cache_folder.path());
    // The writer names files by slice, so the other series is written
    // elsewhere and copied in under new names.
    let scratch = tempfile::tempdir().expect("temporary folder");
    let other = write_series(&grid(4), scratch.path(), &SeriesIds::new(32), 1.0, 0.0);
    for (k, path) in other.iter().enumerate() {
        std::fs::copy(path, case.series.join(format!("other_{k}.dcm"))).expect("copy");
    }
    let error = key_of(&cache, &case, &case.series, &case.rtstruct).unwrap_err();
    assert!(
        matches!(&error, KeyError::Unresolved { field, .. } if field == "MR_image"),
        "{error}"
    );
    assert!(error.to_string().contains("2 series"), "{error}");
}

#[test]
fn multi_frame_key_follows_its_bytes() {
    let case = case();
    let cache_folder = tempfile::tempdir().expect("temporary folder");
    let cache = ResultCache::open(cache_folder.path());
    let multi_frame = case.root.join("case").join("enhanced.dcm");
    write_multi_frame(&grid(4), &multi_frame, &case.ids, 0.0);
    let base = key_of(&cache, &case, &multi_frame, &case.rtstruct).expect("the file hashes");
    // The file alone (no folder is scanned), then the RTSTRUCT.
    assert_eq!(base.stamps.len(), 2);

    let mut changed = grid(4);
    changed.data[[0, 0, 0]] += 1.0;
    write_multi_frame(&changed, &multi_frame, &case.ids, 0.0);
    let modified = key_of(&cache, &case, &multi_frame, &case.rtstruct).expect("hash");
    assert_ne!(modified.digest, base.digest);
}

const STUDY: &str = "dicom-cache-study";
const ROUND: &str = "4b0e5c1a-8d2f-4a61-9c3e-0f7a2d6b1c01";
const SECOND_ROUND: &str = "4b0e5c1a-8d2f-4a61-9c3e-0f7a2d6b1c02";

/// Builds a worker over two patients of the case, P1 with the ROI "ring"
/// and P2 with "box", both named in the manifest's `MR_label` column, and
/// its cache in `folder/cache`. Returns the service and its state, whose
/// metrics count the cache use.
fn service(case: &Case, folder: &Path) -> (WorkerService, Arc<WorkerState>) {
    let config = WorkerConfig {
        center_id: "T".into(),
        listen: "127.0.0.1:0".parse().expect("valid address"),
        metrics_listen: None,
        data_root: case.root.clone(),
        manifest: PathBuf::from("manifest.csv"),
        pseudonym_key_file: PathBuf::from("site.key"),
        policy: Policy {
            min_patients: 1,
            min_per_class: 1,
            share_feature_tables: true,
            ..Policy::default()
        },
        geometry_tolerance: GeometryTolerance::default(),
        extraction_threads: 1,
        max_rounds_kept: 64,
        audit_log: folder.join("audit.jsonl"),
        output_dir: folder.join("habitat-maps"),
        cache_dir: folder.join("cache"),
        tls: None,
        dial_out: None,
    };
    let manifest = "patient_id,label,MR_image,MR_mask,MR_label\n\
                    P1,0,case/series,case/rtstruct.dcm,ring\n\
                    P2,1,case/series,case/rtstruct.dcm,box\n";
    let manifest = Manifest::parse(manifest.as_bytes(), Path::new("manifest.csv"), &case.root)
        .expect("manifest parses");
    let key = PseudonymKey::from_bytes(vec![7; 32]).expect("32-byte key");
    let audit = AuditLog::open(&config.audit_log).expect("audit log opens");
    let state = Arc::new(WorkerState::new(config, manifest, key, audit).expect("data root exists"));
    (WorkerService::new(state.clone()), state)
}

/// Runs `Extract` to its end, checks that no patient was excluded, and
/// returns the round's feature table: column names and rows.
async fn extract(service: &WorkerService, round_id: &str) -> (Vec<String>, Vec<FeatureRow>) {
    let request = ExtractRequest {
        study_id: STUDY.into(),
        round_id: round_id.into(),
        sequences: vec!["MR".into()],
        settings: Some(ProtoSettings {
            feature_classes: vec!["shape".into(), "firstorder".into()],
            bin_width: 25.0,
            label: 1,
            parameters_json: String::new(),
        }),
        ..Default::default()
    };
    let mut stream = service
        .extract(Request::new(request))
        .await
        .expect("Extract starts")
        .into_inner();
    let mut events: Vec<ExtractEvent> = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("Extract answers"));
    }
    for event in &events {
        if let Some(extract_event::Event::Patient(patient)) = &event.event {
            assert_eq!(patient.error, None, "patient {}", patient.pseudonym);
        }
    }

    let mut chunks = service
        .fetch_feature_table(Request::new(FetchFeatureTableRequest {
            study_id: STUDY.into(),
            round_id: round_id.into(),
            max_rows_per_chunk: 0,
        }))
        .await
        .expect("FetchFeatureTable starts")
        .into_inner();
    let (mut names, mut rows) = (Vec::new(), Vec::new());
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("a table chunk");
        names.extend(chunk.feature_names);
        rows.extend(chunk.rows);
    }
    rows.sort_by_key(|row| row.label);
    (names, rows)
}

/// Returns the result cache counters of a worker's metrics: hit, miss.
fn cache_counts(state: &WorkerState) -> [f64; 2] {
    let text = state.metrics().encode();
    ["hit", "miss"].map(|result| {
        let series = format!("radstudy_worker_result_cache_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0.0, |value| value.parse().expect("a number"))
    })
}

/// Returns the value of feature `name` in `row`.
fn value(names: &[String], row: &FeatureRow, name: &str) -> f64 {
    let column = names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("column {name} missing from {names:?}"));
    row.values[column]
}

#[tokio::test]
async fn restarted_worker_answers_series_from_cache() {
    let case = case();
    let folder = tempfile::tempdir().expect("temporary folder");

    let (first, first_state) = service(&case, folder.path());
    let (names, first_rows) = extract(&first, ROUND).await;
    assert_eq!(cache_counts(&first_state), [0.0, 2.0], "two jobs computed");
    // The manifest's names select the ROIs: "ring" has 44 voxels and "box"
    // 16, of 1 × 1 × 2 mm each (see `case`).
    let volumes: Vec<f64> = first_rows
        .iter()
        .map(|row| value(&names, row, "original_shape_VoxelVolume"))
        .collect();
    assert_eq!(volumes, [88.0, 32.0]);
    drop((first, first_state));

    let (restarted, state) = service(&case, folder.path());
    let (cached_names, cached_rows) = extract(&restarted, ROUND).await;
    assert_eq!(cache_counts(&state), [2.0, 0.0], "both jobs from cache");
    assert_eq!(cached_names, names);
    assert_eq!(cached_rows, first_rows, "bit-identical values");

    // Slice k = 1 contains the box: its intensities rise by 100.
    let mut brighter = grid(4);
    for i in 0..12 {
        for j in 0..10 {
            brighter.data[[i, j, 1]] += 100.0;
        }
    }
    replace_slice(&case, &brighter, 1);
    let (_, changed_rows) = extract(&restarted, SECOND_ROUND).await;
    assert_eq!(
        cache_counts(&state),
        [2.0, 2.0],
        "the modified slice misses for both patients"
    );
    let mean =
        |rows: &[FeatureRow], index: usize| value(&names, &rows[index], "original_firstorder_Mean");
    // The box lies on slice 1 only, so its mean rises by exactly 100; the
    // ring lies on slices 2 and 3 and keeps its values. Intensities are
    // small whole numbers, so both comparisons are exact.
    assert_eq!(mean(&changed_rows, 1), mean(&first_rows, 1) + 100.0);
    assert_eq!(changed_rows[0].values, first_rows[0].values);
}
