//! Tests of the service's request handling: `Extract` with pseudonyms and
//! perturbation on the STS data, and the aggregate calls on stored rounds.

use std::path::{Path, PathBuf};

use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{
    DescribeRequest, ExtractRequest, FetchFeatureTableRequest, LogisticStepRequest,
    ReproducibilitySumsRequest, ScoreModelRequest,
};
use radstudy_proto::v1::{
    ExtractionSettings as ProtoSettings, LinearModel, ModelTerm, PerturbationSettings,
    extract_event,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::Request;

use super::*;
use crate::audit::payload_sha256;
use crate::config::{GeometryTolerance, Policy};
use crate::features::{ExtractionSettings, FeatureClass};

const STUDY: &str = "test-study";
const ROUND: &str = "0b6a4c1e-5a2f-4d8e-9c51-3f0d7a2b9e10";
const CENTER: &str = "T";

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn policy(min_patients: u32, min_per_class: u32) -> Policy {
    Policy {
        min_patients,
        min_per_class,
        ..Policy::default()
    }
}

/// Builds a service over `manifest` (CSV text) with paths under `root`.
fn service(root: &Path, manifest: &str, policy: Policy) -> WorkerService {
    service_keeping(root, manifest, policy, 64)
}

/// Builds a service like [`service`] that keeps at most `max_rounds_kept`
/// finished rounds.
fn service_keeping(
    root: &Path,
    manifest: &str,
    policy: Policy,
    max_rounds_kept: usize,
) -> WorkerService {
    // The log file is removed with its folder at the end of this function,
    // and the open handle keeps accepting writes on Unix.
    let folder = tempfile::tempdir().expect("temporary folder");
    service_auditing(
        root,
        manifest,
        policy,
        max_rounds_kept,
        &folder.path().join("audit.jsonl"),
    )
}

/// Builds a service like [`service_keeping`] that writes its audit log to
/// `audit_log`.
fn service_auditing(
    root: &Path,
    manifest: &str,
    policy: Policy,
    max_rounds_kept: usize,
    audit_log: &Path,
) -> WorkerService {
    let config = WorkerConfig {
        center_id: CENTER.into(),
        listen: "127.0.0.1:0".parse().expect("valid address"),
        metrics_listen: None,
        data_root: root.to_path_buf(),
        manifest: PathBuf::from("manifest.csv"),
        pseudonym_key_file: PathBuf::from("site.key"),
        policy,
        geometry_tolerance: GeometryTolerance::default(),
        extraction_threads: 2,
        max_rounds_kept,
        audit_log: audit_log.to_path_buf(),
        output_dir: audit_log.with_file_name("habitat-maps"),
        cache_dir: audit_log.with_file_name("cache"),
        tls: None,
        dial_out: None,
    };
    let manifest =
        Manifest::parse(manifest.as_bytes(), Path::new("manifest.csv"), root).expect("manifest");
    let key = PseudonymKey::from_bytes(vec![7; 32]).expect("32-byte key");
    let audit = AuditLog::open(audit_log).expect("audit log opens");
    let state = WorkerState::new(config, manifest, key, audit).expect("data root exists");
    WorkerService::new(Arc::new(state))
}

fn pseudonym(service: &WorkerService, patient_id: &str) -> String {
    service.state.key.pseudonym(CENTER, patient_id)
}

fn sts_manifest(patients: &[&str]) -> String {
    let mut text = String::from("patient_id,label,PET_image,PET_mask\n");
    for (index, patient) in patients.iter().enumerate() {
        text.push_str(&format!(
            "{patient},{},sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz\n",
            index % 2
        ));
    }
    text
}

fn proto_settings() -> ProtoSettings {
    ProtoSettings {
        feature_classes: vec!["firstorder".into()],
        bin_width: 0.5,
        label: 1,
        parameters_json: String::new(),
    }
}

fn perturbation(repeats: u32) -> PerturbationSettings {
    PerturbationSettings {
        repeats,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    }
}

fn extract_request(
    perturbation: Option<PerturbationSettings>,
    pseudonyms: Vec<String>,
) -> ExtractRequest {
    ExtractRequest {
        study_id: STUDY.into(),
        round_id: ROUND.into(),
        sequences: vec!["PET".into()],
        settings: Some(proto_settings()),
        perturbation,
        pseudonyms,
        ..Default::default()
    }
}

/// Runs `Extract` to its end and returns the events, or the first error.
async fn extract(
    service: &WorkerService,
    request: ExtractRequest,
) -> Result<Vec<ExtractEvent>, Status> {
    let mut stream = service.extract(Request::new(request)).await?.into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event?);
    }
    Ok(events)
}

/// Runs `FetchFeatureTable` on `round_id` and returns the error status,
/// or `None` when the table was served.
async fn fetch_table_error(service: &WorkerService, round_id: &str) -> Option<Status> {
    service
        .fetch_feature_table(Request::new(FetchFeatureTableRequest {
            study_id: STUDY.into(),
            round_id: round_id.into(),
            max_rows_per_chunk: 0,
        }))
        .await
        .err()
}

fn summary(events: &[ExtractEvent]) -> RoundSummary {
    match events.last().and_then(|e| e.event.as_ref()) {
        Some(extract_event::Event::Summary(summary)) => summary.clone(),
        other => panic!("the last event is not a summary: {other:?}"),
    }
}

/// Stores a finished round directly, without extraction.
fn store_round(service: &WorkerService, round: RoundResult) {
    let slot = service.state.slot((STUDY.into(), ROUND.into()));
    *slot.try_lock().expect("slot is free") = Some(Arc::new(round));
}

fn feature_row(pseudonym: &str, label: u32, values: [f64; 2]) -> FeatureRow {
    FeatureRow {
        pseudonym: pseudonym.into(),
        label,
        sequence: "PET".into(),
        region: WHOLE_REGION.into(),
        values: values.to_vec(),
    }
}

/// Builds a round of six patients P1 to P6 with two features. P6 was
/// excluded, so it has no row. Labels alternate from P1 = 0.
fn synthetic_round(copies: Option<RoundCopies>) -> RoundResult {
    let rows = vec![
        feature_row("P1", 0, [1.0, 10.0]),
        feature_row("P2", 1, [2.0, 12.0]),
        feature_row("P3", 0, [3.0, 9.0]),
        feature_row("P4", 1, [4.0, 15.0]),
        feature_row("P5", 0, [5.0, 11.0]),
    ];
    RoundResult {
        request: ValidatedExtract {
            sequences: vec!["PET".into()],
            features: crate::feature_request::FeatureRequest::from_settings(ExtractionSettings {
                classes: vec![FeatureClass::FirstOrder],
                bin_width: 1.0,
                label: 1,
            }),
            perturbation: None,
            pseudonyms: Vec::new(),
            habitat: None,
            regions: vec![WHOLE_REGION.into()],
        },
        events: Vec::new(),
        summary: RoundSummary {
            round_id: ROUND.into(),
            ..Default::default()
        },
        feature_names: vec!["f0".into(), "f1".into()],
        rows,
        patients: ["P1", "P2", "P3", "P4", "P5", "P6"]
            .map(String::from)
            .to_vec(),
        copies,
    }
}

fn model(feature: &str, scale: f64) -> LinearModel {
    LinearModel {
        intercept: 0.25,
        terms: vec![ModelTerm {
            sequence: "PET".into(),
            region: WHOLE_REGION.into(),
            feature: feature.into(),
            mean: 3.0,
            scale,
            coefficient: 0.5,
        }],
    }
}

fn step_request(model: Option<LinearModel>, pseudonyms: &[&str]) -> LogisticStepRequest {
    LogisticStepRequest {
        study_id: STUDY.into(),
        round_id: ROUND.into(),
        model,
        pseudonyms: pseudonyms.iter().map(|p| p.to_string()).collect(),
    }
}

fn score_request(cutoff: f64, edges: &[f64]) -> ScoreModelRequest {
    ScoreModelRequest {
        study_id: STUDY.into(),
        round_id: ROUND.into(),
        model_name: "radiomics".into(),
        model: Some(model("f0", 2.0)),
        cutoff,
        calibration_edges: edges.to_vec(),
        pseudonyms: Vec::new(),
    }
}

fn sums_request() -> ReproducibilitySumsRequest {
    ReproducibilitySumsRequest {
        study_id: STUDY.into(),
        round_id: ROUND.into(),
    }
}

#[tokio::test]
async fn extract_perturbed_sts_round_gives_finite_distinct_copies() {
    // Four patients in the manifest, three requested; PET grids are small,
    // so two copies each take well under a second.
    let manifest = sts_manifest(&["STS_001", "STS_002", "STS_003", "STS_004"]);
    let service = service(&data_root(), &manifest, policy(2, 1));
    let requested: Vec<String> = ["STS_001", "STS_002", "STS_003"]
        .iter()
        .map(|id| pseudonym(&service, id))
        .collect();

    let events = extract(
        &service,
        extract_request(Some(perturbation(2)), requested.clone()),
    )
    .await
    .expect("round runs");
    let round_summary = summary(&events);
    assert_eq!(round_summary.n_extracted, 3, "only the requested patients");
    assert_eq!(round_summary.n_excluded, 0);

    let key = (STUDY.to_string(), ROUND.to_string());
    let round = service.state.finished_round(&key).expect("round stored");
    let copies = round.copies.as_ref().expect("perturbed round keeps copies");
    assert_eq!(copies.repeats, 2);
    assert_eq!(copies.n_excluded, 0);
    assert_eq!(copies.sequences.len(), 1);
    let pet = &copies.sequences[0];
    assert_eq!(pet.region, WHOLE_REGION);
    assert_eq!(pet.patients.len(), 3);
    for patient in &pet.patients {
        let original = round
            .rows
            .iter()
            .find(|row| row.pseudonym == patient.pseudonym)
            .expect("the original row exists");
        assert_eq!(patient.values.len(), 2);
        for (repeat, copy) in patient.values.iter().enumerate() {
            assert_eq!(copy.len(), round.feature_names.len());
            assert!(copy.iter().all(|v| v.is_finite()), "repeat {repeat}");
            // Rotation, noise and volume change alter the ROI intensities,
            // so the copy's first-order features are not the original's.
            assert_ne!(copy, &original.values, "repeat {repeat}");
        }
        assert_ne!(patient.values[0], patient.values[1]);
    }

    let response = service
        .fetch_reproducibility_sums(Request::new(sums_request()))
        .await
        .expect("three patients reach min_patients = 2")
        .into_inner();
    assert_eq!(response.repeats, 2);
    assert_eq!(response.n_excluded, 0);
    assert_eq!(response.sums.len(), round.feature_names.len());
    for entry in &response.sums {
        assert_eq!(entry.sequence, "PET");
        assert_eq!(entry.region, WHOLE_REGION);
        assert_eq!(entry.n_subjects, 3);
        assert_eq!(entry.copy_sums.len(), 2);
        // The shift is the mean of the six values rounded, so
        // T = Σ (x − shift) is rounding only: |T| ≤ 6 · 2ε |shift| plus
        // ε Σ |x − shift| ≤ ε √(6 Q), about 3e-15 (|shift| + √Q).
        let bound = 1e-12 * (entry.shift.abs() + entry.sum_squares.sqrt());
        assert!(
            entry.sum.abs() <= bound,
            "{}: T = {}",
            entry.feature,
            entry.sum
        );
    }

    // The same round id with another perturbation is a conflict.
    let mut other = perturbation(2);
    other.seed = 43;
    let error = extract(&service, extract_request(Some(other), requested))
        .await
        .expect_err("conflicting replay");
    assert_eq!(error.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn extract_invalid_pseudonym_or_perturbation_is_rejected() {
    let root = tempfile::tempdir().expect("temp dir");
    let manifest = "patient_id,label,PET_image,PET_mask\nX1,0,x1.nii.gz,x1_mask.nii.gz\n";
    let service = service(root.path(), manifest, policy(1, 0));

    let error = extract(&service, extract_request(None, vec!["T-0000".into()]))
        .await
        .expect_err("unknown pseudonym");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("\"T-0000\""),
        "{}",
        error.message()
    );
    assert!(
        error.message().contains("pseudonyms"),
        "{}",
        error.message()
    );

    let known = vec![pseudonym(&service, "X1")];
    let error = extract(
        &service,
        extract_request(Some(perturbation(1)), known.clone()),
    )
    .await
    .expect_err("one copy is too few");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("perturbation.repeats"),
        "{}",
        error.message()
    );

    let mut wide = perturbation(2);
    wide.max_angle_deg = 270.0;
    let error = extract(&service, extract_request(Some(wide), known))
        .await
        .expect_err("angle above 180");
    assert!(
        error.message().contains("perturbation.max_angle_deg"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn reproducibility_sums_release_rules() {
    let root = tempfile::tempdir().expect("temp dir");
    let manifest = "patient_id,label,PET_image,PET_mask\n";

    // No round stored: not found.
    let service_a = service(root.path(), manifest, policy(3, 1));
    let error = service_a
        .fetch_reproducibility_sums(Request::new(sums_request()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);

    // A round without perturbation: failed precondition.
    store_round(&service_a, synthetic_round(None));
    let error = service_a
        .fetch_reproducibility_sums(Request::new(sums_request()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert!(
        error.message().contains("perturbation"),
        "{}",
        error.message()
    );

    // PET has three patients with every copy, MR_T1 two: with
    // min_patients = 3, only PET is released.
    let patient = |name: &str, offset: f64| PatientCopies {
        pseudonym: name.into(),
        values: vec![vec![1.0 + offset, 2.0], vec![1.5 + offset, 2.0]],
    };
    let copies = || RoundCopies {
        repeats: 2,
        sequences: vec![
            SequenceCopies {
                sequence: "PET".into(),
                region: WHOLE_REGION.into(),
                patients: vec![patient("P1", 0.0), patient("P2", 1.0), patient("P3", 2.0)],
            },
            SequenceCopies {
                sequence: "MR_T1".into(),
                region: WHOLE_REGION.into(),
                patients: vec![patient("P1", 0.0), patient("P2", 1.0)],
            },
        ],
        n_excluded: 1,
    };
    let service_b = service(root.path(), manifest, policy(3, 1));
    store_round(&service_b, synthetic_round(Some(copies())));
    let response = service_b
        .fetch_reproducibility_sums(Request::new(sums_request()))
        .await
        .expect("PET reaches min_patients")
        .into_inner();
    assert_eq!(response.n_excluded, 1);
    assert_eq!(response.repeats, 2);
    assert_eq!(response.sums.len(), 2, "two features of PET only");
    assert!(response.sums.iter().all(|entry| entry.sequence == "PET"));
    // Feature f0: values 1, 1.5, 2, 2.5, 3, 3.5 with mean 2.25, so copy 0
    // (1, 2, 3) sums to −0.75 and copy 1 (1.5, 2.5, 3.5) to +0.75 after
    // centring. Every step is exact in binary.
    let f0 = &response.sums[0];
    assert_eq!(f0.feature, "f0");
    assert_eq!(f0.shift, 2.25);
    assert_eq!(f0.copy_sums, vec![-0.75, 0.75]);
    // Feature f1 is constant: every sum is 0.
    let f1 = &response.sums[1];
    assert_eq!((f1.shift, f1.sum_squares), (2.0, 0.0));

    // With min_patients = 4 no sequence qualifies: refused, naming the rule
    // and the counts.
    let service_c = service(root.path(), manifest, policy(4, 1));
    store_round(&service_c, synthetic_round(Some(copies())));
    let error = service_c
        .fetch_reproducibility_sums(Request::new(sums_request()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("min_patients = 4"),
        "{}",
        error.message()
    );
    assert!(error.message().contains("PET 3"), "{}", error.message());
}

#[tokio::test]
async fn logistic_step_hand_sums_and_skips() {
    let root = tempfile::tempdir().expect("temp dir");
    let service = service(
        root.path(),
        "patient_id,label,PET_image,PET_mask\n",
        policy(3, 1),
    );
    store_round(&service, synthetic_round(None));

    // Model η = 0.25 + 0.5 (x − 3) / 2 on f0; P6 has no row and is skipped.
    let response = service
        .logistic_step(Request::new(step_request(Some(model("f0", 2.0)), &[])))
        .await
        .expect("five patients, both classes")
        .into_inner();
    assert_eq!(response.n, 5);
    assert_eq!(response.n_positive, 2);
    assert_eq!(response.n_skipped, 1);
    assert_eq!(response.gradient.len(), 2);
    assert_eq!(response.hessian.len(), 4);

    // Independent evaluation: z = (x − 3) / 2 for x = 1..5, y alternating
    // from 0, p = 1 / (1 + e^−η). Five terms of order 1: 1e-12 covers
    // summation order.
    let (mut g0, mut g1, mut h11, mut deviance) = (0.0, 0.0, 0.0, 0.0);
    for (index, x) in [1.0_f64, 2.0, 3.0, 4.0, 5.0].into_iter().enumerate() {
        let y = (index % 2) as f64;
        let z = (x - 3.0) / 2.0;
        let p = 1.0 / (1.0 + (-(0.25 + 0.5 * z)).exp());
        g0 += y - p;
        g1 += z * (y - p);
        h11 += p * (1.0 - p) * z * z;
        deviance += -2.0 * (y * p.ln() + (1.0 - y) * (1.0 - p).ln());
    }
    assert!((response.gradient[0] - g0).abs() < 1e-12);
    assert!((response.gradient[1] - g1).abs() < 1e-12);
    assert!((response.hessian[3] - h11).abs() < 1e-12);
    assert!((response.deviance - deviance).abs() < 1e-12);

    // Two requested patients are below min_patients = 3.
    let error = service
        .logistic_step(Request::new(step_request(
            Some(model("f0", 2.0)),
            &["P1", "P2"],
        )))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("min_patients = 3"),
        "{}",
        error.message()
    );

    // P1, P3 and P5 are all negative: below min_per_class = 1, and the
    // refusal does not state the class counts.
    let error = service
        .logistic_step(Request::new(step_request(
            Some(model("f0", 2.0)),
            &["P1", "P3", "P5"],
        )))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("min_per_class"),
        "{}",
        error.message()
    );
    assert!(!error.message().contains("negative"), "{}", error.message());
}

#[tokio::test]
async fn logistic_step_invalid_requests_name_field() {
    let root = tempfile::tempdir().expect("temp dir");
    let service = service(
        root.path(),
        "patient_id,label,PET_image,PET_mask\n",
        policy(1, 0),
    );
    store_round(&service, synthetic_round(None));

    let cases = [
        (step_request(None, &[]), "model"),
        (step_request(Some(model("f9", 2.0)), &[]), "\"f9\""),
        (step_request(Some(model("f0", 0.0)), &[]), "scale = 0"),
        (step_request(Some(model("f0", 2.0)), &["P7"]), "\"P7\""),
    ];
    for (request, expected) in cases {
        let error = service
            .logistic_step(Request::new(request))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{}", error.message());
        assert!(error.message().contains(expected), "{}", error.message());
    }
}

#[tokio::test]
async fn score_model_policy_and_aggregates() {
    let root = tempfile::tempdir().expect("temp dir");
    let manifest = "patient_id,label,PET_image,PET_mask\n";
    let closed = service(
        root.path(),
        manifest,
        Policy {
            scores_only_validation: false,
            ..policy(1, 0)
        },
    );
    store_round(&closed, synthetic_round(None));
    let error = closed
        .score_model(Request::new(score_request(0.5, &[0.0, 1.0])))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(
        error.message().contains("scores_only_validation"),
        "{}",
        error.message()
    );

    let open = service(root.path(), manifest, policy(3, 1));
    store_round(&open, synthetic_round(None));
    let error = open
        .score_model(Request::new(score_request(0.5, &[0.0, 0.7, 0.4, 1.0])))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("calibration_edges"),
        "{}",
        error.message()
    );
    let error = open
        .score_model(Request::new(score_request(f64::NAN, &[0.0, 1.0])))
        .await
        .unwrap_err();
    assert!(error.message().contains("cutoff"), "{}", error.message());

    let response = open
        .score_model(Request::new(score_request(0.5, &[0.0, 0.5, 1.0])))
        .await
        .expect("five patients, both classes")
        .into_inner();
    // η = 0.25 + 0.25 (x − 3) for x = 1..5 is −0.25, 0, 0.25, 0.5, 0.75:
    // five distinct probabilities, σ(−0.25) < 0.5 ≤ the rest. Positives
    // are x = 2 and 4.
    assert_eq!(
        (response.n, response.n_positive, response.n_skipped),
        (5, 2, 1)
    );
    assert_eq!(response.roc_points.len(), 5);
    let last = response.roc_points.last().expect("points");
    assert_eq!((last.tp, last.fp), (2, 3));
    assert_eq!(
        (response.tp, response.fp, response.tn, response.r#fn),
        (2, 2, 1, 0)
    );
    // σ(0) = 0.5 exactly falls in the lower bin (0, 0.5] with σ(−0.25).
    assert_eq!(response.bin_counts, vec![2, 3]);
    assert_eq!(response.bin_positives, vec![1, 1]);
}

#[tokio::test]
async fn finished_rounds_beyond_max_are_evicted() {
    use crate::metrics::tests::sample;

    let manifest = sts_manifest(&["STS_001", "STS_002"]);
    let sharing = Policy {
        share_feature_tables: true,
        ..policy(1, 1)
    };
    let service = service_keeping(&data_root(), &manifest, sharing, 2);
    let [first, second, third] = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
    ];
    let request_for = |round_id: &str| ExtractRequest {
        round_id: round_id.into(),
        ..extract_request(None, Vec::new())
    };
    let key = |round_id: &str| (STUDY.to_string(), round_id.to_string());
    let rounds_run = |service: &WorkerService| {
        sample(
            &service.state.metrics().encode(),
            "radstudy_worker_round_duration_seconds_count",
        )
    };

    let mut first_events = Vec::new();
    for round_id in [first, second, third] {
        let events = extract(&service, request_for(round_id))
            .await
            .expect("round runs");
        assert_eq!(summary(&events).n_extracted, 2, "{round_id}");
        first_events.push(events);
    }
    assert_eq!(rounds_run(&service), Some(3.0));
    assert!(service.state.finished_round(&key(first)).is_none());
    assert!(service.state.finished_round(&key(second)).is_some());
    assert!(service.state.finished_round(&key(third)).is_some());

    let evicted = fetch_table_error(&service, first)
        .await
        .expect("the evicted round is unknown");
    assert_eq!(evicted.code(), Code::NotFound);
    assert!(
        evicted.message().contains("call Extract first"),
        "{}",
        evicted.message()
    );

    // The two kept rounds replay their stored events without running again.
    for (index, round_id) in [(1, second), (2, third)] {
        let replayed = extract(&service, request_for(round_id))
            .await
            .expect("kept round replays");
        assert_eq!(replayed, first_events[index], "{round_id}");
    }
    assert_eq!(rounds_run(&service), Some(3.0));

    // Running the first round again evicts the second, now the oldest
    // finished round.
    extract(&service, request_for(first))
        .await
        .expect("evicted round runs again");
    assert_eq!(rounds_run(&service), Some(4.0));
    assert!(service.state.finished_round(&key(first)).is_some());
    assert!(service.state.finished_round(&key(second)).is_none());
    assert!(service.state.finished_round(&key(third)).is_some());
}

/// Sends one HTTP GET of `/metrics` to `address` and returns the body.
async fn scrape(address: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send the scrape");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read the scrape");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .expect("response has a body")
}

#[tokio::test]
async fn metrics_scrape_counts_small_sts_round() {
    use crate::metrics::serve_metrics;
    use crate::metrics::tests::sample;

    // Four STS patients with a PET image, and one row whose image is
    // missing from the data set.
    let mut manifest = sts_manifest(&["STS_001", "STS_002", "STS_003", "STS_004"]);
    manifest.push_str("STS_X,1,sts/STS_X/PET_image.nii.gz,sts/STS_X/PET_mask.nii.gz\n");
    let service = service(&data_root(), &manifest, policy(1, 1));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(
        listener,
        service.state.metrics().clone(),
        async {
            let _ = stopped.await;
        },
    ));

    let events = extract(&service, extract_request(None, Vec::new()))
        .await
        .expect("round runs");
    assert_eq!(summary(&events).n_extracted, 4);
    // The same round again is a replay: one more answered request, but no
    // patient or round is counted twice.
    extract(&service, extract_request(None, Vec::new()))
        .await
        .expect("round replays");
    // The default policy keeps the feature table at the site.
    let refused = fetch_table_error(&service, ROUND).await;
    assert_eq!(refused.map(|s| s.code()), Some(Code::PermissionDenied));
    service
        .describe(Request::new(DescribeRequest {
            study_id: STUDY.into(),
        }))
        .await
        .expect("describe answers");

    let text = scrape(address).await;
    let value = |series: &str| sample(&text, series);
    assert_eq!(
        value(r#"radstudy_worker_patients_processed_total{result="extracted",sequence="PET"}"#),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        value(r#"radstudy_worker_patients_processed_total{result="excluded",sequence="PET"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"radstudy_worker_exclusions_total{reason="file_missing"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"radstudy_worker_requests_total{decision="answered",rpc="Extract"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"radstudy_worker_requests_total{decision="refused",rpc="FetchFeatureTable"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"radstudy_worker_requests_total{decision="answered",rpc="Describe"}"#),
        Some(1.0)
    );
    assert_eq!(
        value("radstudy_worker_round_duration_seconds_count"),
        Some(1.0)
    );
    let extract_bytes = value(r#"radstudy_worker_released_bytes_total{rpc="Extract"}"#)
        .expect("Extract bytes series");
    assert!(extract_bytes > 0.0, "{text}");
    assert_eq!(
        value(r#"radstudy_worker_released_bytes_total{rpc="FetchFeatureTable"}"#),
        Some(0.0)
    );
    assert!(
        !text.contains("STS_"),
        "metrics must not name patients: {text}"
    );
    assert!(
        !text.contains(&pseudonym(&service, "STS_001")),
        "metrics must not name pseudonyms: {text}"
    );

    stop.send(()).expect("metrics endpoint running");
    server.await.expect("metrics endpoint stops");
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("audit log is readable")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each audit line is JSON"))
        .collect()
}

#[tokio::test]
async fn audit_log_records_round_and_refusal() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let audit_path = folder.path().join("audit.jsonl");
    let patients = ["STS_001", "STS_002", "STS_003", "STS_004"];
    let service = service_auditing(
        &data_root(),
        &sts_manifest(&patients),
        policy(1, 1),
        64,
        &audit_path,
    );

    let events = extract(&service, extract_request(None, Vec::new()))
        .await
        .expect("round runs");
    // The default policy keeps the feature table at the site.
    let refused = fetch_table_error(&service, ROUND).await;
    assert_eq!(refused.map(|s| s.code()), Some(Code::PermissionDenied));
    let described = service
        .describe(Request::new(DescribeRequest {
            study_id: STUDY.into(),
        }))
        .await
        .expect("describe answers")
        .into_inner();

    let lines = audit_lines(&audit_path);
    assert_eq!(lines.len(), 3, "{lines:?}");

    let round = &lines[0];
    assert_eq!(round["call"], "Extract");
    assert_eq!(round["decision"], "answered");
    assert_eq!(round["study_id"], STUDY);
    assert_eq!(round["round_id"], ROUND);
    assert_eq!(round["released"]["kind"], "round_events");
    assert_eq!(round["released"]["patients"], events.len() - 1);
    assert_eq!(round["payload_sha256"], payload_sha256(&events));

    let table = &lines[1];
    assert_eq!(table["call"], "FetchFeatureTable");
    assert_eq!(table["decision"], "refused");
    let reason = table["reason"].as_str().expect("a refusal has a reason");
    assert!(reason.contains("share_feature_tables = false"), "{reason}");
    assert!(table.get("released").is_none());
    assert!(table.get("payload_sha256").is_none());

    let describe = &lines[2];
    assert_eq!(describe["call"], "Describe");
    assert_eq!(describe["decision"], "answered");
    assert_eq!(describe["released"]["kind"], "description");
    let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        prost::Message::encode_to_vec(&described),
    ));
    assert_eq!(describe["payload_sha256"], expected);

    let text = std::fs::read_to_string(&audit_path).expect("audit log is readable");
    for patient in patients {
        assert!(!text.contains(patient), "patient id {patient} in {text}");
        let pseudonym = pseudonym(&service, patient);
        assert!(
            !text.contains(&pseudonym),
            "pseudonym of {patient} in {text}"
        );
    }
}

#[tokio::test]
async fn audit_write_failure_refuses_request() {
    // Every write to /dev/full fails with "no space left on device".
    let service = service_auditing(
        &data_root(),
        &sts_manifest(&["STS_001", "STS_002"]),
        policy(1, 1),
        64,
        Path::new("/dev/full"),
    );
    let status = service
        .describe(Request::new(DescribeRequest {
            study_id: STUDY.into(),
        }))
        .await
        .expect_err("describe is refused");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("audit log"),
        "{}",
        status.message()
    );
}
