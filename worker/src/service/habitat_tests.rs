//! Tests of the habitat rounds on the STS PET data: `ComputeSupervoxels`,
//! `ApplyHabitatModel`, and `Extract` over their regions.

use std::path::{Path, PathBuf};

use radstudy_proto::v1::worker_server::Worker;
use radstudy_proto::v1::{
    ExtractRequest, HabitatModelRequest, HabitatModelResponse, SupervoxelRequest,
    SupervoxelResponse,
};
use radstudy_proto::v1::{
    ExtractionSettings as ProtoSettings, GeometricOptions, HabitatModel, PerturbationSettings,
    extract_event,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::{Request, Response};

use super::*;
use crate::config::{GeometryTolerance, Policy};
use crate::image::nifti;

const STUDY: &str = "habitat-study";
const SUPERVOXEL_ROUND: &str = "1d1c2b3a-0000-4000-8000-000000000001";
const HABITAT_ROUND: &str = "1d1c2b3a-0000-4000-8000-000000000002";
const EXTRACT_ROUND: &str = "1d1c2b3a-0000-4000-8000-000000000003";
const CENTER: &str = "H";
/// Small PET lesions, so that the debug build clusters them in seconds.
const PATIENTS: [&str; 5] = ["STS_001", "STS_002", "STS_003", "STS_004", "STS_005"];

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn manifest(patients: &[&str]) -> String {
    let mut text = String::from("patient_id,label,PET_image,PET_mask\n");
    for (index, patient) in patients.iter().enumerate() {
        text.push_str(&format!(
            "{patient},{},sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz\n",
            index % 2
        ));
    }
    text
}

/// Builds a service over the PET rows of `patients` that releases
/// aggregates over at least `min_patients` patients.
fn habitat_service(patients: &[&str], min_patients: u32) -> (WorkerService, tempfile::TempDir) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let service = habitat_service_in(folder.path(), patients, min_patients);
    (service, folder)
}

/// Builds a service like [`habitat_service`] with its audit log, maps and
/// result cache in `folder`.
fn habitat_service_in(folder: &Path, patients: &[&str], min_patients: u32) -> WorkerService {
    let root = data_root();
    let config = WorkerConfig {
        center_id: CENTER.into(),
        listen: "127.0.0.1:0".parse().expect("valid address"),
        metrics_listen: None,
        data_root: root.clone(),
        manifest: PathBuf::from("manifest.csv"),
        pseudonym_key_file: PathBuf::from("site.key"),
        policy: Policy {
            min_patients,
            min_per_class: 1,
            share_feature_tables: true,
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
    let manifest = Manifest::parse(
        manifest(patients).as_bytes(),
        Path::new("manifest.csv"),
        &root,
    )
    .expect("manifest");
    let key = PseudonymKey::from_bytes(vec![9; 32]).expect("32-byte key");
    let audit = AuditLog::open(&config.audit_log).expect("audit log opens");
    let state = WorkerState::new(config, manifest, key, audit).expect("data root exists");
    WorkerService::new(Arc::new(state))
}

fn pseudonym(service: &WorkerService, patient_id: &str) -> String {
    service.state.key.pseudonym(CENTER, patient_id)
}

fn supervoxel_request(
    round_id: &str,
    pseudonyms: Vec<String>,
    share: Vec<String>,
) -> SupervoxelRequest {
    SupervoxelRequest {
        study_id: STUDY.into(),
        round_id: round_id.into(),
        sequences: vec!["PET".into()],
        label: 1,
        seed: 42,
        pseudonyms,
        share_pseudonyms: share,
        ..Default::default()
    }
}

async fn compute(
    service: &WorkerService,
    request: SupervoxelRequest,
) -> Result<SupervoxelResponse, Status> {
    service
        .compute_supervoxels(Request::new(request))
        .await
        .map(Response::into_inner)
}

/// Counts the voxels of label 1 in a patient's PET mask, read directly
/// from the file.
fn lesion_voxels(patient: &str) -> usize {
    let path = data_root().join(format!("sts/{patient}/PET_mask.nii.gz"));
    let mask = nifti::read_volume(&path).expect("mask reads");
    mask.data.iter().filter(|&&v| v == 1.0).count()
}

/// Fits a two-habitat model to the shared descriptors: z-score over the
/// pooled rows, centroids at z = (-1, -1) and (1, 1) with the low-intensity
/// habitat named "inner". The model only needs to be valid and to split
/// each lesion; it is not a k-means fit.
fn two_habitat_model(response: &SupervoxelResponse) -> HabitatModel {
    let columns = response.columns.len();
    let rows: Vec<&[f64]> = response
        .patients
        .iter()
        .flat_map(|p| p.descriptors.chunks(columns))
        .collect();
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n)
        .collect();
    let scale: Vec<f64> = (0..columns)
        .map(|c| {
            let variance = rows.iter().map(|r| (r[c] - mean[c]).powi(2)).sum::<f64>() / n;
            variance.sqrt().max(1e-6)
        })
        .collect();
    HabitatModel {
        space: "PET".into(),
        columns: response.columns.clone(),
        mean,
        scale,
        centroids: vec![-1.0, -1.0, 1.0, 1.0],
        names: vec!["inner".into(), "marginal".into()],
        ..HabitatModel::default()
    }
}

fn apply_request(model: HabitatModel, min_region_voxels: u32) -> HabitatModelRequest {
    HabitatModelRequest {
        study_id: STUDY.into(),
        round_id: HABITAT_ROUND.into(),
        supervoxel_round_id: SUPERVOXEL_ROUND.into(),
        models: vec![model],
        min_region_voxels,
        // The relative rule: with PET voxels of about 4 mm every lesion
        // voxel is deeper than the absolute rule's 3 mm, so its rim would
        // be empty.
        geometric: Some(GeometricOptions {
            rule: "relative".into(),
            ..Default::default()
        }),
        write_maps: false,
    }
}

async fn apply(
    service: &WorkerService,
    request: HabitatModelRequest,
) -> Result<HabitatModelResponse, Status> {
    service
        .apply_habitat_model(Request::new(request))
        .await
        .map(Response::into_inner)
}

/// Runs a supervoxel round over every patient, sharing all of them, and
/// returns its response.
async fn supervoxel_round(service: &WorkerService) -> SupervoxelResponse {
    let everyone: Vec<String> = PATIENTS.iter().map(|p| pseudonym(service, p)).collect();
    compute(
        service,
        supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), everyone),
    )
    .await
    .expect("supervoxel round answers")
}

fn extract_request(regions: &[&str], perturbation: Option<PerturbationSettings>) -> ExtractRequest {
    ExtractRequest {
        study_id: STUDY.into(),
        round_id: EXTRACT_ROUND.into(),
        sequences: vec!["PET".into()],
        settings: Some(ProtoSettings {
            feature_classes: vec!["firstorder".into()],
            bin_width: 0.5,
            label: 1,
            parameters_json: String::new(),
        }),
        perturbation,
        pseudonyms: Vec::new(),
        habitat_round_id: HABITAT_ROUND.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
    }
}

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

#[tokio::test]
async fn supervoxels_sts_counts_sum_to_lesion() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let response = supervoxel_round(&service).await;

    assert_eq!(response.columns, ["intensity", "entropy"]);
    assert_eq!(response.n_processed, 5);
    assert_eq!(response.n_excluded, 0, "{:?}", response.errors);
    assert_eq!(response.patients.len(), 5);
    for patient in PATIENTS {
        let shared = response
            .patients
            .iter()
            .find(|p| p.pseudonym == pseudonym(&service, patient))
            .expect("every patient is shared");
        let k = shared.voxel_counts.len();
        assert!((1..=40).contains(&k), "{patient}: {k} supervoxels");
        assert_eq!(shared.k_requested, 40);
        assert_eq!(shared.descriptors.len(), 2 * k);
        assert_eq!(shared.depth_sums.len(), k);
        assert_eq!(shared.entropy_sums.len(), k);
        // Exact: the supervoxels partition the lesion's voxels.
        let total: u32 = shared.voxel_counts.iter().sum();
        assert_eq!(total as usize, lesion_voxels(patient), "{patient}");
        // Ĩ and Ê lie in [0, 1], so their means do too.
        assert!(
            shared.descriptors.iter().all(|v| (0.0..=1.0).contains(v)),
            "{patient}"
        );
    }
}

#[tokio::test]
async fn supervoxels_audit_records_patient_count() {
    let (service, folder) = habitat_service(&PATIENTS, 3);
    supervoxel_round(&service).await;
    let log = std::fs::read_to_string(folder.path().join("audit.jsonl")).expect("audit log");
    let record: serde_json::Value = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .find(|record: &serde_json::Value| record["call"] == "ComputeSupervoxels")
        .expect("a ComputeSupervoxels record");
    assert_eq!(record["decision"], "answered");
    assert_eq!(record["released"]["kind"], "supervoxel_descriptors");
    assert_eq!(record["released"]["patients"], 5);
    // No pseudonym is written to the audit log.
    let pseudonym = pseudonym(&service, "STS_001");
    assert!(!log.contains(&pseudonym));
}

#[tokio::test]
async fn supervoxels_share_below_min_patients_rejected() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let two = vec![
        pseudonym(&service, "STS_001"),
        pseudonym(&service, "STS_002"),
    ];
    let status = compute(
        &service,
        supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), two),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("min_patients = 3"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn supervoxels_unknown_pseudonym_is_invalid() {
    let (service, _folder) = habitat_service(&PATIENTS, 1);
    let request = supervoxel_request(
        SUPERVOXEL_ROUND,
        vec!["H-0000000000000000".into()],
        Vec::new(),
    );
    let status = compute(&service, request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("pseudonyms"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn supervoxels_invalid_option_names_field() {
    let (service, _folder) = habitat_service(&PATIENTS, 1);
    let mut request = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), Vec::new());
    request.supervoxels = Some(radstudy_proto::v1::SupervoxelOptions {
        supervoxels: 5,
        ..Default::default()
    });
    let status = compute(&service, request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("`supervoxels`"),
        "{}",
        status.message()
    );

    let mut request = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), Vec::new());
    request.voxel_features = "entropy_only".into();
    let status = compute(&service, request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("voxel_features"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn supervoxels_same_in_subset_and_order() {
    let (service, _folder) = habitat_service(&PATIENTS, 1);
    let full = supervoxel_round(&service).await;

    // Another worker with the same key, the rows in another order and only
    // two of the patients: the seeds depend on the study seed, the space
    // and the pseudonym alone.
    let (other, _other_folder) = habitat_service(&["STS_004", "STS_002"], 1);
    let subset: Vec<String> = ["STS_004", "STS_002"]
        .iter()
        .map(|p| pseudonym(&other, p))
        .collect();
    let partial = compute(
        &other,
        supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), subset.clone()),
    )
    .await
    .expect("subset round answers");
    assert_eq!(partial.patients.len(), 2);
    for shared in &partial.patients {
        let same = full
            .patients
            .iter()
            .find(|p| p.pseudonym == shared.pseudonym)
            .expect("patient in the full round");
        assert_eq!(same, shared, "{}", shared.pseudonym);
    }
}

#[tokio::test]
async fn supervoxels_replay_and_conflict() {
    let (service, _folder) = habitat_service(&PATIENTS, 1);
    let first = supervoxel_round(&service).await;
    let again = supervoxel_round(&service).await;
    assert_eq!(first, again);

    let mut changed = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), Vec::new());
    changed.seed = 7;
    let status = compute(&service, changed).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

#[tokio::test]
async fn apply_two_habitats_partition_lesion() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    let response = apply(&service, apply_request(two_habitat_model(&supervoxels), 1))
        .await
        .expect("apply answers");
    assert!(response.errors.is_empty(), "{:?}", response.errors);

    let round = service
        .state
        .finished_habitat_round(&(STUDY.into(), HABITAT_ROUND.into()))
        .expect("habitat round kept");
    for patient in PATIENTS {
        let key = (pseudonym(&service, patient), "PET".to_string());
        let masks = &round.regions[&key].masks;
        let whole = masks.roi("whole").expect("whole");
        let inner = masks.roi("inner").expect("inner");
        let marginal = masks.roi("marginal").expect("marginal");
        assert_eq!(whole.voxel_count, lesion_voxels(patient), "{patient}");
        assert_eq!(
            inner.voxel_count + marginal.voxel_count,
            whole.voxel_count,
            "{patient}"
        );
        let overlap = inner
            .mask
            .iter()
            .zip(marginal.mask.iter())
            .filter(|(a, b)| **a && **b)
            .count();
        assert_eq!(overlap, 0, "{patient}");
        let core = masks.roi("core").expect("core");
        let rim = masks.roi("rim").expect("rim");
        assert_eq!(
            core.voxel_count + rim.voxel_count,
            whole.voxel_count,
            "{patient}"
        );
    }

    // Every patient has a whole lesion, so its summary covers all five.
    let whole = response
        .regions
        .iter()
        .find(|r| r.region == "whole")
        .expect("whole summary");
    assert_eq!(whole.n_patients, 5);
    let expected: usize = PATIENTS.iter().map(|p| lesion_voxels(p)).sum();
    assert_eq!(whole.voxels as usize, expected);
    assert_eq!(whole.lesion_voxels, whole.voxels);
    // δ ∈ (0, 1], so the depth sum is positive and at most the voxel count.
    assert!(whole.depth_sum > 0.0);
    assert!(whole.depth_sum <= whole.voxels as f64);
}

#[tokio::test]
async fn apply_small_regions_become_exclusions() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    // Larger than every PET lesion of these patients, so every region of
    // every patient is left out.
    let minimum = 1 + PATIENTS.iter().map(|p| lesion_voxels(p)).max().unwrap_or(0) as u32;
    let response = apply(
        &service,
        apply_request(two_habitat_model(&supervoxels), minimum),
    )
    .await
    .expect("apply answers");
    // inner, marginal, whole, core and rim for each of the five patients.
    assert_eq!(response.exclusions.len(), 25);
    for exclusion in &response.exclusions {
        assert!(exclusion.voxels < minimum, "{exclusion:?}");
        assert!(
            exclusion.reason.contains("min_region_voxels"),
            "{}",
            exclusion.reason
        );
    }
    assert!(response.regions.is_empty(), "{:?}", response.regions);
}

#[tokio::test]
async fn apply_invalid_model_names_field() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    let mut model = two_habitat_model(&supervoxels);
    model.scale[1] = 0.0;
    let status = apply(&service, apply_request(model, 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("models[0].scale"),
        "{}",
        status.message()
    );

    let mut model = two_habitat_model(&supervoxels);
    model.space = "MR_T1".into();
    let status = apply(&service, apply_request(model, 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("space"), "{}", status.message());
}

#[tokio::test]
async fn extract_regions_rows_per_region() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    apply(&service, apply_request(two_habitat_model(&supervoxels), 1))
        .await
        .expect("apply answers");

    let regions = ["inner", "marginal", "whole", "core", "rim"];
    let events = extract(&service, extract_request(&regions, None))
        .await
        .expect("extract answers");
    let mut exclusions = 0;
    for event in &events {
        if let Some(extract_event::Event::Patient(patient)) = &event.event {
            assert!(patient.error.is_none(), "{patient:?}");
            exclusions += patient.region_exclusions.len();
        }
    }
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let round = service.state.finished_round(&key).expect("round kept");
    assert_eq!(round.rows.len() + exclusions, 5 * regions.len());
    for region in ["whole", "core", "rim"] {
        // With min_region_voxels = 1 a region is left out only when it is
        // empty, and the relative rule puts the voxels with δ > 0.5 in the
        // core and the border voxels (smallest δ) in the rim.
        let count = round.rows.iter().filter(|r| r.region == region).count();
        assert_eq!(count, 5, "{region}");
    }
}

#[tokio::test]
async fn extract_unknown_region_or_round_is_invalid() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    apply(&service, apply_request(two_habitat_model(&supervoxels), 1))
        .await
        .expect("apply answers");

    let status = extract(&service, extract_request(&["mid_2"], None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("regions"), "{}", status.message());

    let mut request = extract_request(&["inner"], None);
    request.habitat_round_id = "1d1c2b3a-0000-4000-8000-0000000000ff".into();
    let status = extract(&service, request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("habitat_round_id"),
        "{}",
        status.message()
    );

    let mut request = extract_request(&["inner"], None);
    request.habitat_round_id.clear();
    let status = extract(&service, request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("regions"), "{}", status.message());
}

#[tokio::test]
async fn extract_regions_perturbed_sums_per_region() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    apply(&service, apply_request(two_habitat_model(&supervoxels), 1))
        .await
        .expect("apply answers");
    let perturbation = PerturbationSettings {
        repeats: 2,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    };
    extract(
        &service,
        extract_request(&["whole", "core"], Some(perturbation)),
    )
    .await
    .expect("extract answers");
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let round = service.state.finished_round(&key).expect("round kept");
    let copies = round.copies.as_ref().expect("perturbed copies");
    let entries: Vec<(&str, &str)> = copies
        .sequences
        .iter()
        .map(|s| (s.sequence.as_str(), s.region.as_str()))
        .collect();
    assert_eq!(entries, [("PET", "whole"), ("PET", "core")]);
    let whole = &copies.sequences[0];
    assert_eq!(
        whole.patients.len(),
        5,
        "n_excluded = {}",
        copies.n_excluded
    );
    for patient in &whole.patients {
        assert_eq!(patient.values.len(), 2);
        assert!(patient.values.iter().flatten().all(|v| v.is_finite()));
    }
}

#[tokio::test]
async fn extract_regions_with_parameter_document() {
    let (service, _folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    apply(&service, apply_request(two_habitat_model(&supervoxels), 1))
        .await
        .expect("apply answers");
    let document = r#"{"imageType":{"Original":{},"LoG":{"sigma":[2.0]}},"featureClass":{"firstorder":["Mean"]},"setting":{"binWidth":0.5,"preCrop":true}}"#;
    let with_document = |regions: &[&str], label: u32| {
        let mut request = extract_request(
            regions,
            Some(PerturbationSettings {
                repeats: 2,
                max_angle_deg: 10.0,
                max_volume_change_mm: 1.0,
                noise: true,
                seed: 42,
            }),
        );
        request.settings = Some(ProtoSettings {
            parameters_json: document
                .replace("\"preCrop\"", &format!("\"label\":{label},\"preCrop\"")),
            ..Default::default()
        });
        request
    };

    // The document's label must be the habitat round's, as the contract's label must.
    let status = extract(&service, with_document(&["inner"], 2))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("label = 2"),
        "{}",
        status.message()
    );

    extract(&service, with_document(&["inner", "whole"], 1))
        .await
        .expect("extract answers");
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let round = service.state.finished_round(&key).expect("round kept");
    assert_eq!(
        round.feature_names,
        [
            "original_firstorder_Mean",
            "log-sigma-2-0-mm-3D_firstorder_Mean"
        ]
    );
    let whole_rows = round.rows.iter().filter(|r| r.region == "whole").count();
    assert_eq!(whole_rows, 5);
    for row in &round.rows {
        assert_eq!(row.values.len(), 2, "{} {}", row.pseudonym, row.region);
    }
    // Each copy reruns the habitat chain and computes both columns of every region.
    let copies = round.copies.as_ref().expect("perturbed copies");
    for region in &copies.sequences {
        for patient in &region.patients {
            for copy in &patient.values {
                assert_eq!(copy.len(), 2, "{}", region.region);
                assert!(copy.iter().all(|v| v.is_finite()), "{}", region.region);
            }
        }
    }
    assert_eq!(copies.sequences[1].region, "whole");
    assert_eq!(
        copies.sequences[1].patients.len(),
        5,
        "n_excluded = {}",
        copies.n_excluded
    );
}

/// Returns the `hit` and `miss` counts of a service's result cache metric.
fn cache_hits_and_misses(service: &WorkerService) -> [f64; 2] {
    let text = service.state.metrics().encode();
    ["hit", "miss"].map(|result| {
        let series = format!("radstudy_worker_result_cache_total{{result=\"{result}\"}}");
        crate::metrics::tests::sample(&text, &series)
            .unwrap_or_else(|| panic!("{series} is missing:\n{text}"))
    })
}

#[tokio::test]
async fn extract_regions_restarted_reads_cache() {
    let (service, folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    let model = two_habitat_model(&supervoxels);
    apply(&service, apply_request(model.clone(), 1))
        .await
        .expect("apply answers");
    let perturbation = PerturbationSettings {
        repeats: 2,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    };
    let regions = ["inner", "marginal", "whole", "core", "rim"];
    let first = extract(&service, extract_request(&regions, Some(perturbation)))
        .await
        .expect("extract answers");
    assert_eq!(cache_hits_and_misses(&service), [0.0, 5.0]);
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let first_round = service.state.finished_round(&key).expect("round kept");

    // After a restart the habitat rounds run again, then Extract reads the
    // cache, because the regions and the model are the same.
    let restarted = habitat_service_in(folder.path(), &PATIENTS, 3);
    supervoxel_round(&restarted).await;
    apply(&restarted, apply_request(model.clone(), 1))
        .await
        .expect("apply answers");
    let again = extract(&restarted, extract_request(&regions, Some(perturbation)))
        .await
        .expect("extract answers");
    assert_eq!(cache_hits_and_misses(&restarted), [5.0, 0.0]);
    assert_eq!(again, first);
    let round = restarted.state.finished_round(&key).expect("round kept");
    assert_eq!(round.rows, first_round.rows);
    let copy_values = |round: &RoundResult| -> Vec<u64> {
        let copies = round.copies.as_ref().expect("perturbed copies");
        copies
            .sequences
            .iter()
            .flat_map(|sequence| &sequence.patients)
            .flat_map(|patient| patient.values.iter().flatten())
            .map(|value| value.to_bits())
            .collect()
    };
    assert_eq!(copy_values(&round), copy_values(&first_round));

    // Another min_region_voxels changes the habitat fingerprint, so the
    // same patients miss.
    let other_habitat_round = "1d1c2b3a-0000-4000-8000-000000000004";
    let mut stricter = apply_request(model, 2);
    stricter.round_id = other_habitat_round.into();
    apply(&restarted, stricter).await.expect("apply answers");
    let mut request = extract_request(&regions, Some(perturbation));
    request.round_id = "1d1c2b3a-0000-4000-8000-000000000005".into();
    request.habitat_round_id = other_habitat_round.into();
    extract(&restarted, request).await.expect("extract answers");
    assert_eq!(cache_hits_and_misses(&restarted), [5.0, 5.0]);
}

#[tokio::test]
async fn apply_write_maps_names_files_by_pseudonym() {
    let (service, folder) = habitat_service(&PATIENTS, 3);
    let supervoxels = supervoxel_round(&service).await;
    let mut request = apply_request(two_habitat_model(&supervoxels), 1);
    request.write_maps = true;
    apply(&service, request).await.expect("apply answers");

    let dir = folder.path().join("habitat-maps");
    for patient in PATIENTS {
        let pseudonym = pseudonym(&service, patient);
        for suffix in ["habitats.nii.gz", "habitats.json", "habitats.png"] {
            let path = dir.join(format!("{pseudonym}_PET_{suffix}"));
            assert!(path.is_file(), "{} missing", path.display());
        }
    }
    // No file name carries a local patient id.
    for entry in std::fs::read_dir(&dir).expect("map directory") {
        let name = entry.expect("entry").file_name();
        assert!(
            !name.to_string_lossy().contains("STS_"),
            "{name:?} names a local id"
        );
    }
}

/// Builds a service over the MR and PET rows of `patients`.
fn joint_service(patients: &[&str]) -> (WorkerService, tempfile::TempDir) {
    let (service, folder) = habitat_service(patients, 1);
    let mut text = String::from("patient_id,label,MR_T1_image,MR_T1_mask,PET_image,PET_mask\n");
    for (index, patient) in patients.iter().enumerate() {
        text.push_str(&format!(
            "{patient},{},sts/{patient}/MR_T1_image.nii.gz,sts/{patient}/MR_T1_mask.nii.gz,sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz\n",
            index % 2
        ));
    }
    let root = data_root();
    let manifest =
        Manifest::parse(text.as_bytes(), Path::new("manifest.csv"), &root).expect("manifest");
    let state = &service.state;
    let key = PseudonymKey::from_bytes(vec![9; 32]).expect("32-byte key");
    let audit = AuditLog::open(&state.config.audit_log).expect("audit log opens");
    let state = WorkerState::new(state.config.clone(), manifest, key, audit).expect("state");
    (WorkerService::new(Arc::new(state)), folder)
}

#[tokio::test]
async fn joint_sts_clusters_mr_and_carries_to_pet() {
    let (service, _folder) = joint_service(&["STS_002"]);
    let shared = vec![pseudonym(&service, "STS_002")];
    let mut request = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), shared);
    request.sequences = vec!["MR_T1".into(), "PET".into()];
    request.voxel_features = "joint".into();
    let response = compute(&service, request)
        .await
        .expect("joint round answers");
    assert_eq!(
        response.columns,
        [
            "MR_T1_intensity",
            "MR_T1_entropy",
            "PET_intensity",
            "PET_entropy"
        ]
    );
    assert_eq!(response.n_processed, 1, "{:?}", response.errors);
    assert_eq!(response.n_excluded, 0, "{:?}", response.errors);
    // MR and PET grids differ, so the MR clustering alone made the
    // supervoxels and the PET columns are sampled by position. Both masks
    // outline the same lesion, so every supervoxel has PET samples.
    assert_eq!(response.patients.len(), 1);
    let shared = &response.patients[0];
    assert_eq!(shared.descriptors.len(), 4 * shared.voxel_counts.len());
    assert!(
        shared.descriptors.iter().all(|v| (0.0..=1.0).contains(v)),
        "{:?}",
        shared.descriptors
    );

    let model = HabitatModel {
        space: "joint".into(),
        columns: response.columns.clone(),
        mean: vec![0.5; 4],
        scale: vec![0.25; 4],
        centroids: vec![-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0],
        names: vec!["inner".into(), "marginal".into()],
        ..HabitatModel::default()
    };
    let applied = apply(&service, apply_request(model, 1))
        .await
        .expect("apply answers");
    assert!(applied.errors.is_empty(), "{:?}", applied.errors);

    let round = service
        .state
        .finished_habitat_round(&(STUDY.into(), HABITAT_ROUND.into()))
        .expect("habitat round kept");
    let pseudonym = pseudonym(&service, "STS_002");
    for sequence in ["MR_T1", "PET"] {
        let regions = &round.regions[&(pseudonym.clone(), sequence.to_string())];
        let whole = regions.masks.count("whole").expect("whole");
        let inner = regions.masks.count("inner").expect("inner");
        let marginal = regions.masks.count("marginal").expect("marginal");
        assert_eq!(inner + marginal, whole, "{sequence}");
    }
    // The PET lesion keeps its own mask: the carried labels cover it.
    let pet = &round.regions[&(pseudonym.clone(), "PET".to_string())];
    assert_eq!(pet.masks.count("whole"), Some(lesion_voxels("STS_002")));
    let pet_whole = applied
        .regions
        .iter()
        .find(|r| r.sequence == "PET" && r.region == "whole")
        .expect("PET whole summary");
    let pet_mixed = pet.mixed.iter().filter(|&&mixed| mixed).count() as u64;
    assert_eq!(pet_whole.mixed_voxels, pet_mixed);
    // Labels carried from MR's 3.3 mm slices onto 4–5 mm PET voxels split
    // some votes, and every mixed voxel lies in exactly one habitat.
    assert!(pet_mixed > 0);
    let habitat_mixed: u64 = ["inner", "marginal"]
        .iter()
        .map(|region| {
            applied
                .regions
                .iter()
                .find(|r| r.sequence == "PET" && r.region == *region)
                .map_or(0, |summary| summary.mixed_voxels)
        })
        .sum();
    assert_eq!(habitat_mixed, pet_mixed);
    let mr_whole = applied
        .regions
        .iter()
        .find(|r| r.sequence == "MR_T1" && r.region == "whole")
        .expect("MR whole summary");
    assert_eq!(mr_whole.mixed_voxels, 0);

    // Perturbed copies: the MR copy reruns the chain on its own, and the
    // PET copy, perturbed on its own grid, gets the copy's labels carried
    // by position. Before this was implemented both sequences' copies
    // failed here, so the row counts are the check.
    let perturbation = PerturbationSettings {
        repeats: 2,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    };
    let mut request = extract_request(&["whole", "inner"], Some(perturbation));
    request.sequences = vec!["MR_T1".into(), "PET".into()];
    extract(&service, request).await.expect("extract answers");
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let extracted = service.state.finished_round(&key).expect("round kept");
    let copies = extracted.copies.as_ref().expect("perturbed copies");
    assert_eq!(copies.n_excluded, 0);
    let entries: Vec<(&str, &str)> = copies
        .sequences
        .iter()
        .map(|s| (s.sequence.as_str(), s.region.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            ("MR_T1", "whole"),
            ("MR_T1", "inner"),
            ("PET", "whole"),
            ("PET", "inner")
        ]
    );
    for region in &copies.sequences {
        assert_eq!(region.patients.len(), 1, "{}", region.region);
        let values = &region.patients[0].values;
        assert_eq!(values.len(), 2, "{} {}", region.sequence, region.region);
        assert!(values.iter().flatten().all(|v| v.is_finite()));
    }
}

/// Builds a service whose manifest lists each patient's PET files twice,
/// as PET and PET_TWIN, so that a joint space has two sequences on one
/// grid.
fn twin_pet_service(patients: &[&str]) -> (WorkerService, tempfile::TempDir) {
    let (service, folder) = habitat_service(patients, 1);
    let mut text =
        String::from("patient_id,label,PET_image,PET_mask,PET_TWIN_image,PET_TWIN_mask\n");
    for (index, patient) in patients.iter().enumerate() {
        let files = format!("sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz");
        text.push_str(&format!("{patient},{},{files},{files}\n", index % 2));
    }
    let root = data_root();
    let manifest =
        Manifest::parse(text.as_bytes(), Path::new("manifest.csv"), &root).expect("manifest");
    let state = &service.state;
    let key = PseudonymKey::from_bytes(vec![9; 32]).expect("32-byte key");
    let audit = AuditLog::open(&state.config.audit_log).expect("audit log opens");
    let state = WorkerState::new(state.config.clone(), manifest, key, audit).expect("state");
    (WorkerService::new(Arc::new(state)), folder)
}

#[tokio::test]
async fn joint_perturbed_copies_rerun_joint_chain() {
    let patients = &PATIENTS[..3];
    let (service, _folder) = twin_pet_service(patients);
    let everyone: Vec<String> = patients.iter().map(|p| pseudonym(&service, p)).collect();
    let mut request = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), everyone);
    request.sequences = vec!["PET".into(), "PET_TWIN".into()];
    request.voxel_features = "joint".into();
    let response = compute(&service, request)
        .await
        .expect("joint round answers");
    assert_eq!(response.n_excluded, 0, "{:?}", response.errors);

    // Splits at the pooled mean of the four columns, so both habitats get
    // voxels in every lesion and every perturbed copy.
    let model = HabitatModel {
        space: "joint".into(),
        columns: response.columns.clone(),
        mean: vec![0.5; 4],
        scale: vec![0.25; 4],
        centroids: vec![-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0],
        names: vec!["inner".into(), "marginal".into()],
        ..HabitatModel::default()
    };
    apply(&service, apply_request(model, 1))
        .await
        .expect("apply answers");

    let perturbation = PerturbationSettings {
        repeats: 2,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    };
    extract(
        &service,
        extract_request(&["whole", "inner"], Some(perturbation)),
    )
    .await
    .expect("extract answers");
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let round = service.state.finished_round(&key).expect("round kept");
    let copies = round.copies.as_ref().expect("perturbed copies");
    let entries: Vec<(&str, &str)> = copies
        .sequences
        .iter()
        .map(|s| (s.sequence.as_str(), s.region.as_str()))
        .collect();
    assert_eq!(entries, [("PET", "whole"), ("PET", "inner")]);
    // Before joint copies existed every patient's copies failed here, so
    // the counts are the check that the joint chain reran.
    for region in &copies.sequences {
        assert_eq!(
            region.patients.len(),
            patients.len(),
            "{}: n_excluded = {}",
            region.region,
            copies.n_excluded
        );
        for patient in &region.patients {
            assert_eq!(patient.values.len(), 2, "{}", region.region);
            assert!(patient.values.iter().flatten().all(|v| v.is_finite()));
        }
    }
}

/// Runs the supervoxel round on every STS patient directory, both
/// sequences, and prints its wall-clock time. Ignored by default because
/// it reads every image; run it with `--ignored`, ideally in `--release`.
#[tokio::test]
#[ignore]
async fn supervoxels_whole_sts_cohort() {
    let mut patients: Vec<String> = std::fs::read_dir(data_root().join("sts"))
        .expect("STS directory")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("STS_"))
        .collect();
    patients.sort();
    let patient_refs: Vec<&str> = patients.iter().map(String::as_str).collect();
    let (service, _folder) = joint_service(&patient_refs);
    let mut request = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), Vec::new());
    request.sequences = vec!["MR_T1".into(), "PET".into()];

    let started = std::time::Instant::now();
    let response = compute(&service, request).await.expect("round answers");
    eprintln!(
        "{} STS patients, MR_T1 and PET: {:.1} s, {} processed, {} excluded",
        patients.len(),
        started.elapsed().as_secs_f64(),
        response.n_processed,
        response.n_excluded
    );

    assert_eq!(response.n_processed as usize, 2 * patients.len());
    // The data set's README: STS_009 and STS_020 have no MR image.
    let excluded: Vec<(&str, &str)> = response
        .errors
        .iter()
        .map(|e| (e.sequence.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        excluded,
        [("MR_T1", "MR_T1_image"), ("MR_T1", "MR_T1_image")],
        "{:?}",
        response.errors
    );
}

#[tokio::test]
async fn habitat_of_other_sequence_is_not_missing() {
    use super::aggregates::{Omission, omission};

    let patients = &PATIENTS[..3];
    let (service, _folder) = twin_pet_service(patients);
    let everyone: Vec<String> = patients.iter().map(|p| pseudonym(&service, p)).collect();
    let mut request = supervoxel_request(SUPERVOXEL_ROUND, Vec::new(), everyone);
    request.sequences = vec!["PET".into(), "PET_TWIN".into()];
    let response = compute(&service, request)
        .await
        .expect("per-sequence round answers");
    assert_eq!(response.n_excluded, 0, "{:?}", response.errors);

    // PET gets two habitats and PET_TWIN three, so "mid_2" is a habitat of
    // PET_TWIN only, as when each sequence chooses its own number.
    let pet = two_habitat_model(&response);
    let twin = HabitatModel {
        space: "PET_TWIN".into(),
        centroids: vec![-1.0, -1.0, 0.0, 0.0, 1.0, 1.0],
        names: vec!["inner".into(), "mid_2".into(), "marginal".into()],
        ..pet.clone()
    };
    let mut apply_twin = apply_request(pet, 1);
    apply_twin.models.push(twin);
    apply(&service, apply_twin).await.expect("apply answers");

    let habitat = service
        .state
        .finished_habitat_round(&(STUDY.into(), HABITAT_ROUND.into()))
        .expect("habitat round kept");
    assert!(habitat.has_region("PET", "whole"));
    assert!(habitat.has_region("PET", "inner"));
    assert!(
        habitat.has_region("PET", "core"),
        "the geometric split is on"
    );
    assert!(!habitat.has_region("PET", "mid_2"));
    assert!(habitat.has_region("PET_TWIN", "mid_2"));

    let perturbation = PerturbationSettings {
        repeats: 2,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed: 42,
    };
    let mut request = extract_request(&["whole", "mid_2"], Some(perturbation));
    request.sequences = vec!["PET".into(), "PET_TWIN".into()];
    extract(&service, request).await.expect("extract answers");
    let key = (STUDY.to_string(), EXTRACT_ROUND.to_string());
    let round = service.state.finished_round(&key).expect("round kept");
    let copies = round.copies.as_ref().expect("perturbed copies");
    let omissions: Vec<(&str, &str, Option<Omission>)> = copies
        .sequences
        .iter()
        .map(|copies| {
            (
                copies.sequence.as_str(),
                copies.region.as_str(),
                omission(&round, copies, 1),
            )
        })
        .collect();
    assert_eq!(omissions[0], ("PET", "whole", None));
    assert_eq!(omissions[1], ("PET", "mid_2", Some(Omission::NotARegion)));
    assert_eq!(omissions[2], ("PET_TWIN", "whole", None));
    // Whether every patient's "mid_2" has copies depends on its voxels, but
    // the region is PET_TWIN's own, so a shortfall would be a real one.
    assert_eq!(omissions[3].1, "mid_2");
    assert_ne!(omissions[3].2, Some(Omission::NotARegion));
}
