//! End-to-end: one STS study run over direct connections and over dial-out
//! connections, with real worker processes on loopback. In dial-out mode
//! the workers connect to the coordinator's dial-in listener and serve
//! gRPC on those connections, and the coordinator code above the
//! connection is the same. The study results must be identical.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use radstudy::config::{CenterConfig, CenterRole, StudyConfig};
use radstudy::run::{StudyOutcome, run_study};
use radstudy_e2e::{
    TestCenter, data_root, dial_out_centers, start_dial_in, start_dial_out_workers, start_workers,
    sts_study, workspace_root,
};

fn centers() -> Vec<TestCenter> {
    let examples = workspace_root().join("examples/sts");
    vec![
        TestCenter {
            id: "A".into(),
            role: CenterRole::Development,
            data_root: data_root(),
            manifest: examples.join("manifest_a.csv"),
            share_feature_tables: true,
        },
        TestCenter {
            id: "B".into(),
            role: CenterRole::External,
            data_root: data_root(),
            manifest: examples.join("manifest_b.csv"),
            share_feature_tables: true,
        },
    ]
}

/// Returns the STS example study, made cheaper but still with every round kind
/// that needs no habitat model: extraction, feature tables, and the
/// perturbation round with its reproducibility sums.
fn study(centers: Vec<CenterConfig>) -> anyhow::Result<StudyConfig> {
    let mut study = sts_study(centers)?;
    study.icc.patients = 10;
    study.icc.repeats = 3;
    study.habitat.enabled = false;
    study.model.bootstrap_replicates = 0;
    Ok(study)
}

async fn run(study: &StudyConfig, out: &Path) -> anyhow::Result<StudyOutcome> {
    let outcome = run_study(study, out, false).await?;
    assert!(
        outcome.failed_centers.is_empty(),
        "{:?}",
        outcome.failed_centers
    );
    Ok(outcome)
}

/// Asserts that two runs of the study gave the same results and files.
fn assert_same_results(
    direct: &StudyOutcome,
    dial_out: &StudyOutcome,
    label: &str,
) -> anyhow::Result<()> {
    assert_eq!(direct.n_patients, dial_out.n_patients, "{label}");
    // A worker extracts patients in parallel and reports exclusions as
    // they finish, so their order varies from run to run in either mode.
    let sorted = |outcome: &StudyOutcome| {
        let mut exclusions = outcome.exclusions.clone();
        exclusions.sort_by(|a, b| {
            (&a.center, &a.sequence, &a.pseudonym).cmp(&(&b.center, &b.sequence, &b.pseudonym))
        });
        exclusions
    };
    assert_eq!(sorted(direct), sorted(dial_out), "{label}");
    assert_eq!(direct.notes, dial_out.notes, "{label}");
    // Same pseudonym keys, seeds and feature values give the same split,
    // selection and fits, so every metric is equal, not only close.
    assert_eq!(
        direct.modelling.metrics, dial_out.modelling.metrics,
        "{label}"
    );
    for file in ["features.csv", "metrics.csv"] {
        let expected = std::fs::read_to_string(direct.out_dir.join(file))?;
        let found = std::fs::read_to_string(dial_out.out_dir.join(file))?;
        assert!(expected == found, "{label}: {file} differs");
    }
    Ok(())
}

/// Starts a dial-in listener for `study` on `address`, retrying while the
/// previous listener on that port is still closing.
async fn restart_dial_in(study: &mut StudyConfig, address: SocketAddr) -> anyhow::Result<()> {
    use radstudy::client::dial_in::{DialIn, DialInSettings};

    let dial_in = DialIn::new(DialInSettings {
        listen: address.to_string(),
        wait_s: 60,
    });
    let mut attempts = 0;
    loop {
        match dial_in.start(study).await {
            Ok(_) => break,
            Err(error) if attempts < 20 => {
                attempts += 1;
                eprintln!("dial-in listener not bound yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    study.dial_in = Some(dial_in);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_study_matches_direct_study() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let direct_dir = dir.path().join("direct");
    let dial_out_dir = dir.path().join("dial-out");
    std::fs::create_dir_all(&direct_dir)?;
    std::fs::create_dir_all(&dial_out_dir)?;

    let direct_workers = start_workers(&direct_dir, &centers())?;
    let direct = run(
        &study(direct_workers.centers.clone())?,
        &dir.path().join("study-direct"),
    )
    .await?;
    drop(direct_workers);

    let mut dial_out_study = study(dial_out_centers(&centers()))?;
    let listener = start_dial_in(&mut dial_out_study).await?;
    let dial_out_workers = start_dial_out_workers(&dial_out_dir, &centers(), listener)?;
    let dial_out = run(&dial_out_study, &dir.path().join("study-dial-out")).await?;
    assert_same_results(&direct, &dial_out, "first dial-out run")?;

    // The audit log names the coordinator by the address that the worker
    // dialled, as direct mode names it by the address it came from.
    let audit = std::fs::read_to_string(dial_out_dir.join("audit.jsonl"))?;
    assert!(audit.lines().count() > 4, "{audit}");
    for line in audit.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        assert_eq!(
            record["requester"].as_str(),
            Some(listener.to_string().as_str()),
            "{line}"
        );
    }

    // A new coordinator process on the same address: the workers' standbys
    // to the old listener close, the workers redial, and the study runs
    // again on fresh connections.
    drop(dial_out_study);
    let mut second_study = study(dial_out_centers(&centers()))?;
    restart_dial_in(&mut second_study, listener).await?;
    let second = run(&second_study, &dir.path().join("study-dial-out-again")).await?;
    assert_same_results(&direct, &second, "run after the listener restarted")?;

    drop(dial_out_workers);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_center_without_worker_times_out() -> anyhow::Result<()> {
    let mut study = study(dial_out_centers(&centers()))?;
    start_dial_in(&mut study).await?;
    if let Some(dial_in) = &mut study.dial_in {
        dial_in.settings.wait_s = 1;
    }
    let center = study.centers[0].clone();
    let error = radstudy::client::CenterClient::connect_for_study(&study, &center)
        .await
        .expect_err("no worker dials in");
    let message = error.to_string();
    assert!(
        message.contains("no connection from the worker of center A within 1 s"),
        "{message}"
    );
    assert!(message.contains("[dial_out]"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_client_reconnects_to_restarted_worker() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let center_a = &centers()[..1];
    let mut study = study(dial_out_centers(center_a))?;
    let listener = start_dial_in(&mut study).await?;
    let workers = start_dial_out_workers(dir.path(), center_a, listener)?;
    let center = study.centers[0].clone();
    let mut client = radstudy::client::CenterClient::connect_for_study(&study, &center).await?;
    assert_eq!(client.describe(&study.study_id).await?.center_id, "A");

    // The worker stops, which closes its connection, and a new worker
    // process dials in. The same client must reach it, as a direct-mode
    // client reaches a restarted worker on its port.
    drop(workers);
    let _restarted = start_dial_out_workers(dir.path(), center_a, listener)?;
    // The first call after the break can fail as a lost connection, in
    // either mode; a later one runs on the new connection.
    let mut answered = None;
    for attempt in 1..=3 {
        match client.describe(&study.study_id).await {
            Ok(description) => {
                answered = Some(description.center_id);
                break;
            }
            Err(error) => eprintln!("call {attempt} after the restart failed: {error}"),
        }
    }
    assert_eq!(answered.as_deref(), Some("A"));
    Ok(())
}
