//! Fault tests on loopback: real worker and coordinator processes, one of
//! them killed or stopped mid-study.
//!
//! The study is a small part of the soft-tissue-sarcoma cohort: 20
//! patients at the development center A and 10 at the external center B,
//! which keeps its table and validates by scores only. It extracts
//! first-order features only and runs a small ICC filter, so that each run
//! takes seconds. Results are compared byte for byte with an
//! uninterrupted run of the same study: the workers use fixed pseudonym
//! keys and the study a fixed seed, so every run of it writes the same
//! files.
//!
//! Needs the `radstudy` and `radstudy-worker` binaries next to the test
//! binary (`cargo build -p radstudy -p radstudy-worker` first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use radstudy::config::CenterRole;
use radstudy::demo::WorkerProcess;
use radstudy_e2e::{
    RunningCenters, TestCenter, data_root, start_workers, workspace_binary, workspace_root,
};

/// Patients at A: STS_001 to STS_020, 5 of them with lung metastasis;
/// STS_009 and STS_020 have no MR image, so 38 patient-sequence pairs.
const PATIENTS_A: usize = 20;
/// Patients at B: STS_036 to STS_045, 4 of them with lung metastasis.
const PATIENTS_B: usize = 10;

/// Files that must be equal between an interrupted and an uninterrupted
/// study. `provenance.json` and `report.html` name the round ids, which
/// differ between two new studies, so they are left out.
const COMPARED_FILES: [&str; 7] = [
    "metrics.csv",
    "scores_only.json",
    "models.json",
    "predictions.csv",
    "selection.json",
    "features.csv",
    "exclusions.csv",
];

/// Deadlines of the study: short, so that a stopped worker ends the study
/// within seconds. The round deadline must still cover a whole extraction
/// round of center A on a loaded 2-core machine, with room to spare.
const CALL_S: u64 = 5;
const ROUND_S: u64 = 40;
const KEEPALIVE_S: u64 = 2;

fn write_manifest(source: &str, rows: usize, target: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(workspace_root().join("examples/sts").join(source))?;
    let kept: Vec<&str> = text.lines().take(rows + 1).collect();
    std::fs::write(target, kept.join("\n") + "\n")?;
    Ok(())
}

/// Starts workers A and B on free loopback ports.
fn start_centers(dir: &Path) -> anyhow::Result<RunningCenters> {
    let manifest_a = dir.join("manifest_a.csv");
    let manifest_b = dir.join("manifest_b.csv");
    write_manifest("manifest_a.csv", PATIENTS_A, &manifest_a)?;
    write_manifest("manifest_b.csv", PATIENTS_B, &manifest_b)?;
    start_workers(
        dir,
        &[
            TestCenter {
                id: "A".into(),
                role: CenterRole::Development,
                data_root: data_root(),
                manifest: manifest_a,
                share_feature_tables: true,
            },
            TestCenter {
                id: "B".into(),
                role: CenterRole::External,
                data_root: data_root(),
                manifest: manifest_b,
                share_feature_tables: false,
            },
        ],
    )
}

/// Writes the study.toml of the test study for `running`'s endpoints.
fn write_study(dir: &Path, running: &RunningCenters) -> anyhow::Result<PathBuf> {
    let mut text =
        String::from("study_id = \"faults\"\nseed = 42\nsequences = [\"MR_T1\", \"PET\"]\n");
    for center in &running.centers {
        let role = match center.role {
            CenterRole::Development => "development",
            CenterRole::External => "external",
        };
        text.push_str(&format!(
            "[[centers]]\nid = {:?}\nendpoint = {:?}\nrole = {role:?}\n",
            center.id, center.endpoint
        ));
    }
    text.push_str(&format!(
        "[split]\ntrain_fraction = 0.7\n\
         [features]\nclasses = [\"firstorder\"]\nbin_width = 25.0\nlabel = 1\n\
         [icc]\nenabled = true\npatients = 6\nrepeats = 2\n\
         [timeouts]\ncall_s = {CALL_S}\nround_s = {ROUND_S}\nkeepalive_s = {KEEPALIVE_S}\n\
         [retry]\nattempts = 8\ninitial_ms = 200\nmax_ms = 2000\n"
    ));
    let path = dir.join("study.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn coordinator(study: &Path, out: &Path, resume: bool) -> anyhow::Result<Command> {
    let mut command = Command::new(workspace_binary("radstudy")?);
    command
        .arg("--no-progress")
        .arg("run")
        .arg(study)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "radstudy=info")
        .stdin(Stdio::null());
    if resume {
        command.arg("--resume");
    }
    Ok(command)
}

fn run_coordinator(study: &Path, out: &Path, resume: bool) -> anyhow::Result<Output> {
    let output = coordinator(study, out, resume)?.output()?;
    // Kept next to the study for a failing test's reader.
    let log = out.with_extension(if resume { "resume.log" } else { "log" });
    std::fs::write(log, &output.stderr)?;
    Ok(output)
}

fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -{name} {pid} failed: {status}");
    Ok(())
}

/// Counts the patient-sequence pairs a worker has logged as extracted: the
/// message "extracted" followed by its `cache` field, which perturbed-copy
/// lines ("extracted perturbed copies") do not have.
fn extracted_count(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|text| {
            text.lines()
                .filter(|l| l.contains(": extracted cache="))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until `ready` returns true, polling every 20 ms.
fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while !ready() {
        anyhow::ensure!(
            start.elapsed() < limit,
            "{what} did not happen within {} s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Reads the compared files. The rows of `exclusions.csv` are sorted,
/// because a worker reports its patients in the order they finish, which
/// differs between runs.
fn read_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    COMPARED_FILES
        .iter()
        .map(|name| {
            let mut bytes = std::fs::read(out.join(name)).unwrap_or_default();
            if *name == "exclusions.csv" {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.len() > 1 {
                    lines[1..].sort_unstable();
                }
                bytes = lines.join("\n").into_bytes();
            }
            (name.to_string(), bytes)
        })
        .collect()
}

/// Runs the study once without faults and returns its compared files,
/// shared by every test.
fn baseline() -> &'static Vec<(String, Vec<u8>)> {
    static BASELINE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let run = || -> anyhow::Result<Vec<(String, Vec<u8>)>> {
            let dir = tempfile::tempdir()?;
            let running = start_centers(dir.path())?;
            let study = write_study(dir.path(), &running)?;
            let out = dir.path().join("study");
            let output = run_coordinator(&study, &out, false)?;
            anyhow::ensure!(
                output.status.success(),
                "baseline study failed: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            Ok(read_files(&out))
        };
        match run() {
            Ok(files) => files,
            Err(error) => panic!("baseline study failed: {error:#}"),
        }
    })
}

fn assert_same_files(out: &Path) {
    let expected = baseline();
    for (name, bytes) in read_files(out) {
        let baseline_bytes = &expected
            .iter()
            .find(|(n, _)| *n == name)
            .expect("compared file in the baseline")
            .1;
        assert!(
            !bytes.is_empty(),
            "{name} missing or empty in {}",
            out.display()
        );
        assert!(
            bytes == *baseline_bytes,
            "{name} differs from the uninterrupted run ({} against {} bytes)",
            bytes.len(),
            baseline_bytes.len()
        );
    }
}

#[test]
fn worker_killed_mid_extraction_then_restarted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut running = start_centers(dir.path())?;
    let study = write_study(dir.path(), &running)?;
    let out = dir.path().join("study");
    let log_a = dir.path().join("worker_A.log");
    let total_a = 2 * PATIENTS_A - 2;

    let child = coordinator(&study, &out, false)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_for("A's second extracted pair", Duration::from_secs(60), || {
        extracted_count(&log_a) >= 2
    })?;
    let extracted_before_kill = extracted_count(&log_a);
    signal(running.processes[0].id(), "KILL")?;
    // kill(1) returns before the process is gone; reap it, so that its port
    // is free before the restart binds it again.
    running.processes[0].stop();

    // The same port again, so that the coordinator's channel reconnects.
    let config = dir.path().join("worker_A.toml");
    let text = std::fs::read_to_string(&config)?.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = {:?}", running.processes[0].address),
    );
    std::fs::write(&config, text)?;
    let binary = workspace_binary("radstudy-worker")?;
    let restarted = WorkerProcess::start(&binary, &config, &dir.path().join("worker_A.2.log"))?;
    running.processes[0] = restarted;

    let output = child.wait_with_output()?;
    std::fs::write(dir.path().join("coordinator.log"), &output.stderr)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        extracted_before_kill < total_a,
        "A finished all {total_a} pairs before the kill, so nothing was interrupted"
    );
    assert!(
        output.status.success(),
        "the study failed or left a center out: {}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("retrying"),
        "no retry was logged:\n{stderr}"
    );
    assert_same_files(&out);
    Ok(())
}

#[test]
fn coordinator_killed_then_resumed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let running = start_centers(dir.path())?;
    let study = write_study(dir.path(), &running)?;
    let out = dir.path().join("study");
    let state = out.join("state");

    let mut child = coordinator(&study, &out, false)?
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_for(
        "the feature table checkpoint",
        Duration::from_secs(120),
        || state.join("features.json").exists(),
    )?;
    signal(child.id(), "KILL")?;
    child.wait()?;
    assert!(
        !out.join("metrics.csv").exists(),
        "the study finished before the kill, so nothing was interrupted"
    );

    // A new study in the same directory is rejected with the hint.
    let again = run_coordinator(&study, &out, false)?;
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "a second new study was accepted");
    assert!(message.contains("--resume"), "{message}");

    // Both workers restart on new ports, so they hold no round in memory,
    // and study.toml follows them: endpoints are not part of the settings
    // hash.
    drop(running);
    let running = start_centers(dir.path())?;
    let study = write_study(dir.path(), &running)?;

    let resumed = run_coordinator(&study, &out, true)?;
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        resumed.status.success(),
        "the resumed study failed: {}\n{stderr}",
        resumed.status
    );
    assert!(
        stderr.contains("restored from the checkpoint"),
        "the resumed study did not use its checkpoint:\n{stderr}"
    );
    // B validates by scores only, from the extraction round, which the
    // restarted worker had to compute again.
    assert!(
        stderr.contains("extraction round sent again"),
        "the extraction round was not sent again:\n{stderr}"
    );
    assert_same_files(&out);
    Ok(())
}

#[test]
fn resume_rejects_changed_study() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // No worker is needed: the coordinator rejects the study before it
    // connects.
    let running = RunningCenters {
        processes: Vec::new(),
        centers: ["A", "B"]
            .iter()
            .enumerate()
            .map(|(index, id)| radstudy::config::CenterConfig {
                id: id.to_string(),
                endpoint: format!("http://127.0.0.1:{}", 9 + index),
                role: if index == 0 {
                    CenterRole::Development
                } else {
                    CenterRole::External
                },
                server_name: None,
                mode: radstudy::config::CenterMode::Direct,
            })
            .collect(),
    };
    let study = write_study(dir.path(), &running)?;
    let out = dir.path().join("study");
    // A checkpoint of the same study with another seed: written by the
    // library, so the file is what a real first run leaves.
    let mut config = radstudy::config::StudyConfig::load(&study)?;
    config.seed = 7;
    radstudy::checkpoint::Checkpoints::open(&out, &config, false)?;

    let output = run_coordinator(&study, &out, true)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a changed study was resumed");
    assert!(stderr.contains("settings changed"), "{stderr}");
    assert!(stderr.contains("study.json"), "{stderr}");
    Ok(())
}

#[test]
fn stopped_worker_ends_study_partial() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let running = start_centers(dir.path())?;
    let study = write_study(dir.path(), &running)?;
    let out = dir.path().join("study");
    let log_b = dir.path().join("worker_B.log");
    let pid_b = running.processes[1].id();

    let start = Instant::now();
    let child = coordinator(&study, &out, false)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stopped = wait_for("B's first extracted pair", Duration::from_secs(60), || {
        extracted_count(&log_b) >= 1
    })
    .and_then(|()| signal(pid_b, "STOP"));
    let output = child.wait_with_output();
    let elapsed = start.elapsed();
    eprintln!(
        "study with B stopped ended after {:.1} s",
        elapsed.as_secs_f64()
    );
    // Resume B whatever happened, so that dropping it can stop it.
    signal(pid_b, "CONT")?;
    stopped?;
    let output = output?;
    std::fs::write(dir.path().join("coordinator.log"), &output.stderr)?;

    let stdout = String::from_utf8_lossy(&output.stdout);
    // Exit status 3: the study finished, with a center left out.
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("center B left out:"))
        .unwrap_or_else(|| panic!("no failure line for B:\n{stdout}"));
    eprintln!("{line}");
    assert!(line.contains("no reply within"), "{line}");
    assert!(out.join("metrics.csv").is_file(), "no metrics for A");
    // Bound: B's round deadline plus the rest of the study (handshake,
    // A's extraction and ICC round, modelling), which takes under 30 s
    // on this test's data.
    assert!(
        elapsed < Duration::from_secs(ROUND_S + 30),
        "the study took {} s",
        elapsed.as_secs()
    );
    Ok(())
}
