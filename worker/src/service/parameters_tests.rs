//! Tests of `Extract` with a PyRadiomics parameter document (contract 1.4) on STS PET
//! images: the round's columns and values equal `radstudy-worker extract --param` on the
//! same cases, invalid documents are rejected naming the key, and the document is part of
//! the round's identity and of the result cache key.

use std::path::{Path, PathBuf};

use radstudy_proto::v1::ExtractRequest;
use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{ExtractionSettings as ProtoSettings, PerturbationSettings};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::Request;

use super::*;
use crate::cli::extract::{Case, extract_case};
use crate::config::{GeometryTolerance, Policy};
use crate::params::document::ParameterDocument;

const STUDY: &str = "parameters-study";
const ROUND: &str = "2c9e5d4a-7b1f-4a3e-8d60-5e4f3a2b1c01";
const SECOND_ROUND: &str = "2c9e5d4a-7b1f-4a3e-8d60-5e4f3a2b1c02";
const CENTER: &str = "T";
const PATIENTS: [&str; 2] = ["STS_001", "STS_002"];

/// LoG σ = 2 mm and the coif1 wavelet on top of the original image, two first-order
/// features, a bin width suited to PET SUVs, and `preCrop` so that the filters run on the
/// ROI's box.
const DOCUMENT: &str = r#"{"imageType":{"Original":{},"LoG":{"sigma":[2.0]},"Wavelet":{}},"featureClass":{"firstorder":["Mean","Entropy"]},"setting":{"binWidth":0.5,"label":1,"preCrop":true}}"#;

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Builds a service over the PET rows of [`PATIENTS`] with its cache and audit log in
/// `folder`.
fn service(folder: &Path) -> WorkerService {
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
        audit_log: folder.join("audit.jsonl"),
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
    let key = PseudonymKey::from_bytes(vec![9; 32]).expect("32-byte key");
    let audit = AuditLog::open(&config.audit_log).expect("audit log opens");
    let state = WorkerState::new(config, manifest, key, audit).expect("data root exists");
    WorkerService::new(Arc::new(state))
}

fn request(round_id: &str, settings: ProtoSettings) -> ExtractRequest {
    ExtractRequest {
        study_id: STUDY.into(),
        round_id: round_id.into(),
        sequences: vec!["PET".into()],
        settings: Some(settings),
        ..Default::default()
    }
}

fn document_settings(json: &str) -> ProtoSettings {
    ProtoSettings {
        parameters_json: json.into(),
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

fn finished(service: &WorkerService, round_id: &str) -> Arc<RoundResult> {
    service
        .state
        .finished_round(&(STUDY.into(), round_id.into()))
        .expect("round finished")
}

#[tokio::test]
async fn document_round_equals_cli_extraction() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let service = service(folder.path());
    extract(&service, request(ROUND, document_settings(DOCUMENT)))
        .await
        .expect("round runs");
    let round = finished(&service, ROUND);
    assert_eq!(round.summary.n_extracted, 2, "{:?}", round.events);

    // 1 original + 1 LoG + 8 wavelet images, Mean and Entropy each.
    assert_eq!(round.feature_names.len(), 20, "{:?}", round.feature_names);
    for column in [
        "original_firstorder_Mean",
        "log-sigma-2-0-mm-3D_firstorder_Mean",
        "wavelet-LLH_firstorder_Entropy",
        "wavelet-HHH_firstorder_Mean",
    ] {
        assert!(
            round.feature_names.iter().any(|name| name == column),
            "{column} missing from {:?}",
            round.feature_names
        );
    }

    // The CLI's pipeline on the same files and document gives the same numbers, bit for
    // bit, because both run the same code on the same inputs.
    let parsed = ParameterDocument::from_json(DOCUMENT).expect("valid document");
    let parsed = parsed.parsed();
    for patient in PATIENTS {
        let case = Case {
            id: patient.into(),
            image: data_root().join(format!("sts/{patient}/PET_image.nii.gz")),
            mask: data_root().join(format!("sts/{patient}/PET_mask.nii.gz")),
            label: None,
        };
        let expected = extract_case(
            &case,
            &parsed.settings,
            &parsed.options,
            &parsed.image_types,
        )
        .expect("CLI extraction");
        let pseudonym = service.state.key.pseudonym(CENTER, patient);
        let row = round
            .rows
            .iter()
            .find(|row| row.pseudonym == pseudonym)
            .expect("the patient's row");
        assert_eq!(row.values.len(), round.feature_names.len());
        for (name, value) in &expected {
            let column = round
                .feature_names
                .iter()
                .position(|column| column == name)
                .unwrap_or_else(|| panic!("{name} is not a column of the round"));
            assert_eq!(
                row.values[column].to_bits(),
                value.to_bits(),
                "{patient} {name}: round {} against CLI {value}",
                row.values[column]
            );
        }
        assert_eq!(expected.len(), round.feature_names.len(), "{patient}");
    }
}

#[tokio::test]
async fn document_errors_are_invalid_argument_naming_key() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let service = service(folder.path());
    for (json, named) in [
        (r#"{"setting":{"binwidth":0.5}}"#, "\"binwidth\""),
        (r#"{"imageType":{"LoG":{"sigma":[-1]}}}"#, "sigma = [-1]"),
        (r#"{"imageType":{"LBP3D":{}}}"#, "imageType.LBP3D"),
        (r#"{"setting": "#, "not valid JSON"),
    ] {
        let error = extract(&service, request(ROUND, document_settings(json)))
            .await
            .expect_err("invalid document");
        assert_eq!(error.code(), Code::InvalidArgument, "{json}");
        assert!(
            error.message().contains(named),
            "{json}: {}",
            error.message()
        );
        assert!(
            error.message().contains("settings.parameters_json"),
            "{json}: {}",
            error.message()
        );
    }

    // The three contract fields next to a document are ambiguous.
    let mixed = ProtoSettings {
        label: 1,
        ..document_settings(DOCUMENT)
    };
    let error = extract(&service, request(ROUND, mixed))
        .await
        .expect_err("mixed settings");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error
            .message()
            .contains("label is set together with parameters_json")
    );
}

#[tokio::test]
async fn document_is_part_of_round_identity() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let service = service(folder.path());
    extract(&service, request(ROUND, document_settings(DOCUMENT)))
        .await
        .expect("round runs");

    // The same document with its keys in another order replays the round.
    let reordered = r#"{"setting":{"preCrop":true,"label":1,"binWidth":0.5},"featureClass":{"firstorder":["Mean","Entropy"]},"imageType":{"Wavelet":{},"LoG":{"sigma":[2.0]},"Original":{}}}"#;
    extract(&service, request(ROUND, document_settings(reordered)))
        .await
        .expect("equal document replays");

    // Another σ under the same round id is a conflict.
    let other = DOCUMENT.replace("[2.0]", "[3.0]");
    let error = extract(&service, request(ROUND, document_settings(&other)))
        .await
        .expect_err("conflicting replay");
    assert_eq!(error.code(), Code::FailedPrecondition);

    // Under a new round id it runs, with its own columns and without the first round's
    // cache entries: every job misses.
    extract(&service, request(SECOND_ROUND, document_settings(&other)))
        .await
        .expect("round runs");
    let second = finished(&service, SECOND_ROUND);
    assert!(
        second
            .feature_names
            .iter()
            .any(|name| name == "log-sigma-3-0-mm-3D_firstorder_Mean")
    );
    let text = service.state.metrics().encode();
    let misses =
        crate::metrics::tests::sample(&text, "radstudy_worker_result_cache_total{result=\"miss\"}")
            .expect("miss counter");
    let hits =
        crate::metrics::tests::sample(&text, "radstudy_worker_result_cache_total{result=\"hit\"}")
            .unwrap_or(0.0);
    assert_eq!((misses, hits), (4.0, 0.0), "two rounds of two patients");
}

#[tokio::test]
async fn document_round_perturbed_copies_have_every_column() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let service = service(folder.path());
    let mut request = request(ROUND, document_settings(DOCUMENT));
    request.perturbation = Some(PerturbationSettings {
        repeats: 2,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    });
    extract(&service, request).await.expect("round runs");
    let round = finished(&service, ROUND);
    let copies = round.copies.as_ref().expect("perturbed round keeps copies");
    assert_eq!(copies.n_excluded, 0);
    let pet = &copies.sequences[0];
    assert_eq!(pet.patients.len(), 2);
    for patient in &pet.patients {
        for copy in &patient.values {
            assert_eq!(copy.len(), round.feature_names.len());
            assert!(copy.iter().all(|value| value.is_finite()));
        }
    }
}
