//! Tests of `Extract` through the result cache on STS patients: a new
//! service over the same `cache_dir`, as after a restart, returns the same
//! events, table, copies and audit payload hash from the cache.

use std::path::{Path, PathBuf};

use radstudy_proto::v1::ExtractRequest;
use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{ExtractionSettings as ProtoSettings, PerturbationSettings};
use tokio_stream::StreamExt;
use tonic::Request;

use super::*;
use crate::config::{GeometryTolerance, Policy};
use crate::metrics::tests::sample;

const STUDY: &str = "cache-study";
const ROUND: &str = "6f1d1f0e-3c7b-4e55-9a0e-2b1f6f9c4a01";
const SECOND_ROUND: &str = "6f1d1f0e-3c7b-4e55-9a0e-2b1f6f9c4a02";
const CENTER: &str = "T";
const PATIENTS: [&str; 3] = ["STS_001", "STS_002", "STS_003"];

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Builds a service over the PET rows of [`PATIENTS`] with its cache in
/// `folder/cache` and its audit log in `folder/<audit_name>`.
fn service(folder: &Path, audit_name: &str) -> WorkerService {
    let root = data_root();
    let config = WorkerConfig {
        center_id: CENTER.into(),
        listen: "127.0.0.1:0".parse().expect("valid address"),
        metrics_listen: None,
        data_root: root.clone(),
        manifest: PathBuf::from("manifest.csv"),
        pseudonym_key_file: PathBuf::from("site.key"),
        policy: Policy {
            min_patients: 1,
            ..Policy::default()
        },
        geometry_tolerance: GeometryTolerance::default(),
        extraction_threads: 2,
        max_rounds_kept: 64,
        audit_log: folder.join(audit_name),
        output_dir: folder.join("habitat-maps"),
        cache_dir: folder.join("cache"),
        tls: None,
        dial_out: None,
    };
    let mut manifest = String::from("patient_id,label,PET_image,PET_mask\n");
    for (index, patient) in PATIENTS.iter().enumerate() {
        manifest.push_str(&format!(
            "{patient},{},sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz\n",
            index % 2
        ));
    }
    let manifest =
        Manifest::parse(manifest.as_bytes(), Path::new("manifest.csv"), &root).expect("manifest");
    let key = PseudonymKey::from_bytes(vec![7; 32]).expect("32-byte key");
    let audit = AuditLog::open(&config.audit_log).expect("audit log opens");
    let state = WorkerState::new(config, manifest, key, audit).expect("data root exists");
    WorkerService::new(Arc::new(state))
}

fn request(round_id: &str, bin_width: f64) -> ExtractRequest {
    ExtractRequest {
        study_id: STUDY.into(),
        round_id: round_id.into(),
        sequences: vec!["PET".into()],
        settings: Some(ProtoSettings {
            feature_classes: vec!["firstorder".into()],
            bin_width,
            label: 1,
            parameters_json: String::new(),
        }),
        perturbation: Some(PerturbationSettings {
            repeats: 2,
            max_angle_deg: 10.0,
            max_volume_change_mm: 1.0,
            noise: true,
            seed: 42,
        }),
        ..Default::default()
    }
}

/// Runs `Extract` to its end and returns its events.
async fn extract(service: &WorkerService, request: ExtractRequest) -> Vec<ExtractEvent> {
    let mut stream = service
        .extract(Request::new(request))
        .await
        .expect("Extract starts")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("Extract answers"));
    }
    events
}

/// Returns the cache counters of a service's metrics: hit, miss, invalid.
fn cache_counts(service: &WorkerService) -> [f64; 3] {
    let text = service.state.metrics().encode();
    ["hit", "miss", "invalid"].map(|result| {
        let series = format!("radstudy_worker_result_cache_total{{result=\"{result}\"}}");
        sample(&text, &series).unwrap_or_else(|| panic!("{series} is missing:\n{text}"))
    })
}

fn finished(service: &WorkerService, round_id: &str) -> Arc<RoundResult> {
    service
        .state
        .finished_round(&(STUDY.into(), round_id.into()))
        .expect("round finished")
}

/// Returns every feature value and copy value of a round as bits, in table
/// and copy order, so that equal results mean bit-identical values.
fn value_bits(round: &RoundResult) -> Vec<u64> {
    let rows = round.rows.iter().flat_map(|row| &row.values);
    let copies = round
        .copies
        .iter()
        .flat_map(|copies| &copies.sequences)
        .flat_map(|sequence| &sequence.patients)
        .flat_map(|patient| patient.values.iter().flatten());
    rows.chain(copies).map(|value| value.to_bits()).collect()
}

/// Returns the `payload_sha256` of every answered `Extract` of `round_id`
/// in an audit log.
fn audited_payloads(path: &Path, round_id: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("audit log is readable")
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("audit line is JSON"))
        .filter(|record| record["call"] == "Extract" && record["round_id"] == round_id)
        .filter_map(|record| record["payload_sha256"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn restarted_service_answers_rounds_from_cache() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let first = service(folder.path(), "audit-first.jsonl");
    let first_events = extract(&first, request(ROUND, 0.5)).await;
    // Each of the three patients is one job: computed, then stored.
    assert_eq!(cache_counts(&first), [0.0, 3.0, 0.0]);
    let first_round = finished(&first, ROUND);
    assert_eq!(first_round.summary.n_extracted, 3);
    drop(first);

    let restarted = service(folder.path(), "audit-restarted.jsonl");
    let same_round_events = extract(&restarted, request(ROUND, 0.5)).await;
    assert_eq!(cache_counts(&restarted), [3.0, 0.0, 0.0]);
    assert_eq!(same_round_events, first_events);
    let same_round = finished(&restarted, ROUND);
    assert_eq!(same_round.rows, first_round.rows);
    assert_eq!(value_bits(&same_round), value_bits(&first_round));
    assert_eq!(
        same_round.copies.as_ref().map(|c| c.n_excluded),
        first_round.copies.as_ref().map(|c| c.n_excluded)
    );

    // A new round id with the same settings reads the same entries.
    let new_round_events = extract(&restarted, request(SECOND_ROUND, 0.5)).await;
    assert_eq!(cache_counts(&restarted), [6.0, 0.0, 0.0]);
    let n = first_events.len();
    assert_eq!(new_round_events[..n - 1], first_events[..n - 1]);
    let new_round = finished(&restarted, SECOND_ROUND);
    assert_eq!(new_round.summary.round_id, SECOND_ROUND);
    assert_eq!(
        RoundSummary {
            round_id: ROUND.into(),
            ..new_round.summary.clone()
        },
        first_round.summary
    );
    assert_eq!(value_bits(&new_round), value_bits(&first_round));

    // The cached response is audited with the original's payload hash.
    let original = audited_payloads(&folder.path().join("audit-first.jsonl"), ROUND);
    let cached = audited_payloads(&folder.path().join("audit-restarted.jsonl"), ROUND);
    assert_eq!(original.len(), 1);
    assert_eq!(cached, original);
}

#[tokio::test]
async fn changed_bin_width_misses_cache() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let first = service(folder.path(), "audit.jsonl");
    extract(&first, request(ROUND, 0.5)).await;
    let restarted = service(folder.path(), "audit.jsonl");
    extract(&restarted, request(SECOND_ROUND, 0.25)).await;
    assert_eq!(cache_counts(&restarted), [0.0, 3.0, 0.0]);
    assert_ne!(
        value_bits(&finished(&restarted, SECOND_ROUND)),
        value_bits(&finished(&first, ROUND)),
        "the first-order entropy and uniformity depend on the bin width"
    );
}

#[tokio::test]
async fn damaged_entries_are_recomputed_in_round() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let first = service(folder.path(), "audit.jsonl");
    let first_events = extract(&first, request(ROUND, 0.5)).await;

    // Cut every entry file to its first 20 bytes, as a torn write would
    // if the writes were not atomic.
    let mut damaged = 0;
    for folder in std::fs::read_dir(folder.path().join("cache")).expect("cache lists") {
        for entry in std::fs::read_dir(folder.expect("folder").path()).expect("folder lists") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("entry reads");
            std::fs::write(&path, &bytes[..20]).expect("entry is cut");
            damaged += 1;
        }
    }
    assert_eq!(damaged, 3);

    let restarted = service(folder.path(), "audit.jsonl");
    let events = extract(&restarted, request(ROUND, 0.5)).await;
    // The metric counts an unusable entry as `invalid`, not also as `miss`.
    assert_eq!(cache_counts(&restarted), [0.0, 0.0, 3.0]);
    assert_eq!(events, first_events);

    let again = service(folder.path(), "audit.jsonl");
    extract(&again, request(ROUND, 0.5)).await;
    assert_eq!(
        cache_counts(&again),
        [3.0, 0.0, 0.0],
        "the entries were rewritten"
    );
}

#[tokio::test]
async fn concurrent_rounds_share_cache_intact() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let one = service(folder.path(), "audit-one.jsonl");
    let other = service(folder.path(), "audit-other.jsonl");
    let (one_events, other_events) = tokio::join!(
        extract(&one, request(ROUND, 0.5)),
        extract(&other, request(ROUND, 0.5))
    );
    assert_eq!(one_events, other_events);

    let reader = service(folder.path(), "audit-reader.jsonl");
    let events = extract(&reader, request(ROUND, 0.5)).await;
    assert_eq!(cache_counts(&reader), [3.0, 0.0, 0.0]);
    assert_eq!(events, one_events);
    assert_eq!(
        value_bits(&finished(&reader, ROUND)),
        value_bits(&finished(&one, ROUND))
    );
}
