//! End-to-end test of the habitat rounds of contract 1.2 over real gRPC
//! with real worker processes on STS patients. The same patients, served
//! by one, two or three workers in different manifest orders, must give
//! the same population habitat model (centroids bit for bit) and the same
//! per-region voxel sums. A pseudonym is the center id followed by a keyed
//! hash of the patient id, so every worker here reports center id "S" and
//! uses the same key: a patient then has the same pseudonym whichever
//! worker serves it, as it would if a site moved patients between two of
//! its workers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use radstudy::client::CenterClient;
use radstudy::config::StudyConfig;
use radstudy::demo::WorkerProcess;
use radstudy::habitat::config::{KChoice, KCriterion};
use radstudy::habitat::round::{HabitatOutcome, HabitatRoundIds, run_rounds};
use radstudy_e2e::{data_root, sts_study, workspace_binary, workspace_root};
use radstudy_proto::v1::{DescribeResponse, ExtractRequest, ExtractionSettings};

const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// STS patients of the test: the first 15 rows of center A's manifest, so
/// that a three-way split gives each worker 5 patients.
const PATIENTS: usize = 15;

// Round ids are UUIDs; a fixed one keeps the test's rounds apart.
const ROUND_PLAIN: &str = "00000000-0000-4000-8000-00000000a001";
const ROUND_REGIONS: &str = "00000000-0000-4000-8000-00000000a002";

/// Returns the manifest header and the first `PATIENTS` patient rows.
fn manifest_rows() -> anyhow::Result<(String, Vec<String>)> {
    let text = std::fs::read_to_string(workspace_root().join("examples/sts/manifest_a.csv"))?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| anyhow::anyhow!("manifest_a.csv is empty"))?
        .to_string();
    let rows: Vec<String> = lines
        .filter(|l| !l.trim().is_empty())
        .take(PATIENTS)
        .map(str::to_string)
        .collect();
    anyhow::ensure!(
        rows.len() == PATIENTS,
        "manifest_a.csv has {} rows",
        rows.len()
    );
    Ok((header, rows))
}

/// Starts one worker per group of manifest rows, all with center id "S"
/// and one pseudonym key. `min_patients = 1` releases every region sum, so
/// the totals cover every patient whatever the split; under a larger
/// minimum a worker withholds a region that fewer of its patients have,
/// and the totals would depend on the split by design. The clients name
/// the workers S1, S2, …
fn start_group_workers(
    dir: &Path,
    header: &str,
    groups: &[Vec<String>],
) -> anyhow::Result<Vec<(String, WorkerProcess)>> {
    let binary = workspace_binary("radstudy-worker")?;
    let key = dir.join("shared.key");
    std::fs::write(&key, "5a".repeat(32))?;
    let mut workers = Vec::new();
    for (index, rows) in groups.iter().enumerate() {
        let center = format!("S{}", index + 1);
        let manifest = dir.join(format!("manifest_{center}.csv"));
        std::fs::write(&manifest, format!("{header}\n{}\n", rows.join("\n")))?;
        let config = dir.join(format!("worker_{center}.toml"));
        std::fs::write(
            &config,
            format!(
                "center_id = \"S\"\nlisten = \"127.0.0.1:0\"\ndata_root = {root:?}\nmanifest = {manifest:?}\n\
                 pseudonym_key_file = {key:?}\naudit_log = \"audit_{center}.jsonl\"\noutput_dir = \"maps_{center}\"\n\
                 [policy]\nmin_patients = 1\nshare_feature_tables = true\n",
                root = data_root(),
            ),
        )?;
        let log = dir.join(format!("worker_{center}.log"));
        workers.push((center, WorkerProcess::start(&binary, &config, &log)?));
    }
    Ok(workers)
}

/// Returns the study of the test: the STS example with PET only and a habitat
/// plan small enough for CI (10 supervoxels, 5-voxel windows, K from 2 to
/// 4), with maps kept in memory.
fn study() -> anyhow::Result<StudyConfig> {
    let mut study = sts_study(Vec::new())?;
    study.sequences = vec!["PET".into()];
    study.timeouts.round_s = CALL_TIMEOUT.as_secs();
    let habitat = &mut study.habitat;
    habitat.enabled = true;
    habitat.entropy.window_edge = 5;
    habitat.supervoxels.supervoxels = 10;
    habitat.supervoxels.n_init = 3;
    habitat.k = KChoice::Criterion(KCriterion::CalinskiHarabasz);
    habitat.k_min = 2;
    habitat.k_max = 4;
    habitat.write_maps = false;
    habitat.regions = vec!["whole".into(), "habitats".into()];
    Ok(study)
}

/// Connects to the workers and learns every patient's pseudonym from a
/// plain extraction round.
async fn connect(
    study: &StudyConfig,
    workers: &[(String, WorkerProcess)],
) -> anyhow::Result<(
    Vec<(CenterClient, DescribeResponse)>,
    BTreeMap<String, Vec<String>>,
)> {
    let mut connected = Vec::new();
    let mut training = BTreeMap::new();
    for (center, process) in workers {
        let endpoint = format!("http://{}", process.address);
        let mut client = CenterClient::connect(center, &endpoint, CALL_TIMEOUT).await?;
        let description = client.describe(&study.study_id).await?;
        client
            .extract(
                ExtractRequest {
                    study_id: study.study_id.clone(),
                    round_id: ROUND_PLAIN.into(),
                    sequences: study.sequences.clone(),
                    settings: Some(ExtractionSettings {
                        feature_classes: vec!["firstorder".into()],
                        bin_width: 25.0,
                        label: 1,
                        parameters_json: String::new(),
                    }),
                    ..Default::default()
                },
                CALL_TIMEOUT,
                |_, _| {},
            )
            .await?;
        let table = client
            .fetch_feature_table(&study.study_id, ROUND_PLAIN)
            .await?;
        let mut pseudonyms: Vec<String> = table.rows.iter().map(|r| r.pseudonym.clone()).collect();
        pseudonyms.sort();
        pseudonyms.dedup();
        training.insert(center.clone(), pseudonyms);
        connected.push((client, description));
    }
    Ok((connected, training))
}

/// Runs both habitat rounds with every patient as a training patient.
async fn habitat_outcome(dir: &Path, groups: &[Vec<String>]) -> anyhow::Result<HabitatOutcome> {
    let (header, _) = manifest_rows()?;
    let workers = start_group_workers(dir, &header, groups)?;
    let study = study()?;
    let (connected, training) = connect(&study, &workers).await?;
    let all: usize = training.values().map(Vec::len).sum();
    assert_eq!(all, PATIENTS, "every patient has a PET image");
    let outcome = run_rounds(
        &study,
        &study.habitat,
        &connected,
        &training,
        HabitatRoundIds::fresh(),
    )
    .await
    .map_err(|(reason, _)| anyhow::anyhow!("habitat rounds failed: {reason}"))?;
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    // Dropping the processes stops the workers.
    drop(workers);
    Ok(outcome)
}

/// Region totals as (sequence, region) -> (patients, voxels, lesion
/// voxels): integer counts, exact whatever the summation order.
fn voxel_counts(outcome: &HabitatOutcome) -> BTreeMap<(String, String), (u64, u64, u64)> {
    outcome
        .region_totals
        .iter()
        .map(|t| {
            (
                (t.sequence.clone(), t.region.clone()),
                (t.patients, t.voxels, t.lesion_voxels),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn habitat_model_same_for_any_center_split() -> anyhow::Result<()> {
    let (_, rows) = manifest_rows()?;

    let one = vec![rows.clone()];
    let mut reversed = rows.clone();
    reversed.reverse();
    let two = vec![
        reversed.iter().step_by(2).cloned().collect(),
        reversed.iter().skip(1).step_by(2).cloned().collect(),
    ];
    // Three groups of 5 from a fixed permutation (index · 7 mod 15).
    let permuted: Vec<String> = (0..PATIENTS)
        .map(|i| rows[(i * 7) % PATIENTS].clone())
        .collect();
    let three: Vec<Vec<String>> = permuted.chunks(5).map(<[String]>::to_vec).collect();

    let dir = tempfile::tempdir()?;
    let mut outcomes = Vec::new();
    for (name, groups) in [("one", &one), ("two", &two), ("three", &three)] {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub)?;
        let outcome = habitat_outcome(&sub, groups).await?;
        outcomes.push((name, outcome));
    }

    let (_, reference) = &outcomes[0];
    assert_eq!(reference.models.len(), 1, "one habitat space, PET");
    let model = &reference.models[0];
    assert!((2..=4).contains(&model.k), "K = {}", model.k);
    assert_eq!(model.names.first().map(String::as_str), Some("inner"));
    assert_eq!(model.names.last().map(String::as_str), Some("marginal"));
    assert_eq!(model.training_patients, PATIENTS);
    assert!(!reference.region_totals.is_empty());

    for (name, outcome) in &outcomes[1..] {
        assert_eq!(outcome.models.len(), reference.models.len(), "{name}");
        for (a, b) in outcome.models.iter().zip(&reference.models) {
            // Bit for bit: the pooled rows are sorted by pseudonym before
            // the fit, and each patient's supervoxels are seeded by its
            // pseudonym, so no step depends on the split.
            assert_eq!(a.mean, b.mean, "{name}: z-score means");
            assert_eq!(a.scale, b.scale, "{name}: z-score scales");
            assert_eq!(a.centroids, b.centroids, "{name}: centroids");
            assert_eq!(a.names, b.names, "{name}: names");
            assert_eq!(a.candidates, b.candidates, "{name}: K criterion values");
        }
        assert_eq!(
            voxel_counts(outcome),
            voxel_counts(reference),
            "{name}: region voxels"
        );
        assert_eq!(
            outcome.regions, reference.regions,
            "{name}: extraction regions"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn habitat_regions_reach_feature_table() -> anyhow::Result<()> {
    let (header, rows) = manifest_rows()?;
    let dir = tempfile::tempdir()?;
    let workers = start_group_workers(dir.path(), &header, &[rows])?;
    let study = study()?;
    let (mut connected, training) = connect(&study, &workers).await?;
    let outcome = run_rounds(
        &study,
        &study.habitat,
        &connected,
        &training,
        HabitatRoundIds::fresh(),
    )
    .await
    .map_err(|(reason, _)| anyhow::anyhow!("habitat rounds failed: {reason}"))?;

    let (client, _) = &mut connected[0];
    client
        .extract(
            ExtractRequest {
                study_id: study.study_id.clone(),
                round_id: ROUND_REGIONS.into(),
                sequences: study.sequences.clone(),
                settings: Some(ExtractionSettings {
                    feature_classes: vec!["firstorder".into()],
                    bin_width: 25.0,
                    label: 1,
                    parameters_json: String::new(),
                }),
                habitat_round_id: outcome.apply_round_id.clone(),
                regions: outcome.regions.clone(),
                ..Default::default()
            },
            CALL_TIMEOUT,
            |_, _| {},
        )
        .await?;
    let table = client
        .fetch_feature_table(&study.study_id, ROUND_REGIONS)
        .await?;
    let regions: std::collections::BTreeSet<&str> =
        table.rows.iter().map(|r| r.region.as_str()).collect();
    assert!(regions.contains("whole"), "{regions:?}");
    assert!(regions.contains("inner"), "{regions:?}");
    assert!(regions.contains("marginal"), "{regions:?}");
    for region in &regions {
        assert!(
            outcome.regions.iter().any(|r| r == region),
            "row region {region} was not requested"
        );
    }
    // A patient has a row for a region exactly when the apply round
    // counted the region for it: the totals' patients equal the rows.
    for total in &outcome.region_totals {
        let rows = table
            .rows
            .iter()
            .filter(|r| r.sequence == total.sequence && r.region == total.region)
            .count() as u64;
        assert_eq!(rows, total.patients, "{} {}", total.sequence, total.region);
    }
    drop(workers);
    Ok(())
}
