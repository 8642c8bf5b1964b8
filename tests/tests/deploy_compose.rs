//! End-to-end deployment: `deploy/build-images.sh` builds the two container
//! images from the compiled binaries, `deploy/compose` runs the three-site
//! soft-tissue-sarcoma study in real containers, and site C's network is cut
//! while its extraction round runs. The study must end as the README
//! documents for a lost center: exit status 3, with C and its reason in
//! `provenance.json`, and only A and B in the feature table.
//!
//! The containers talk mutual TLS with certificates that
//! `deploy/pki/make-study-pki.sh` makes for each run in a temporary folder.
//!
//! Needs a Docker engine and either `docker compose` (the v2 plugin) or
//! `docker-compose` (v1). Without them the test fails, unless
//! `RADSTUDY_SKIP_DOCKER=1` is set, which turns it into a pass that prints
//! why it skipped. Every container, network and image it creates carries a
//! per-run project name or tag, and a drop guard removes them however the
//! test ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use radstudy_e2e::{data_root, workspace_binary, workspace_root};

/// Environment variable that skips the test where Docker is unavailable.
const SKIP_VARIABLE: &str = "RADSTUDY_SKIP_DOCKER";

/// uid and gid that the images run as (deploy/images/*.Dockerfile).
const IMAGE_UID: u32 = 10001;

/// Deadline of the whole study, from `run coordinator` to its exit: the
/// study's `timeouts.round_s` (120 s in deploy/compose/study/study.toml)
/// bounds the cut site's round, plus time for the handshake and modelling.
const STUDY_DEADLINE: Duration = Duration::from_secs(170);

/// Time for the three workers to report healthy after `up`.
const HEALTHY_DEADLINE: Duration = Duration::from_secs(60);

/// Time for site C's round to start after the coordinator starts.
const ROUND_START_DEADLINE: Duration = Duration::from_secs(60);

/// The site whose network is cut, its compose service and network.
const CUT_CENTER: &str = "C";
const CUT_SERVICE: &str = "worker-c";
const CUT_NETWORK: &str = "site-c";

/// Compose override of this test: site C gets a fifth of a core, so that
/// its extraction round (about 2 s of CPU for 16 patient-sequence pairs)
/// lasts long enough to be cut while it runs.
const SLOW_SITE_OVERRIDE: &str = "services:\n  worker-c:\n    cpus: 0.2\n";

/// Runs `command` and returns its output; panics with its stderr when it
/// fails.
fn run_checked(command: &mut Command, description: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {description}: {error}"));
    assert!(
        output.status.success(),
        "{description} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// Returns the compose command line: the v2 plugin when present, else v1.
fn compose_program() -> Option<Vec<String>> {
    if succeeds("docker", &["compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if succeeds("docker-compose", &["version"]) {
        Some(vec!["docker-compose".into()])
    } else {
        None
    }
}

/// One compose project of this test, with the environment that the compose
/// file reads.
struct Project {
    program: Vec<String>,
    name: String,
    files: Vec<PathBuf>,
    environment: Vec<(&'static str, String)>,
}

impl Project {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program[0]);
        command.args(&self.program[1..]).arg("-p").arg(&self.name);
        for file in &self.files {
            command.arg("-f").arg(file);
        }
        command.args(args);
        for (key, value) in &self.environment {
            command.env(key, value);
        }
        command
    }

    /// Returns the id of the container of `service`.
    fn container(&self, service: &str) -> String {
        let output = run_checked(
            &mut self.command(&["ps", "-q", service]),
            &format!("compose ps {service}"),
        );
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(!id.is_empty(), "service {service} has no container");
        id
    }

    /// Returns the id of the project's network `network`.
    fn network(&self, network: &str) -> String {
        let output = run_checked(
            Command::new("docker").args([
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.name),
                "--filter",
                &format!("label=com.docker.compose.network={network}"),
            ]),
            "docker network ls",
        );
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(!id.is_empty(), "project has no network {network}");
        id
    }
}

/// Removes everything the test created when it goes out of scope: the
/// coordinator process, the project's containers and networks, and the
/// images of the run's tag.
struct Teardown<'a> {
    project: &'a Project,
    image_tag: String,
    coordinator: Option<Child>,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.coordinator.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self
            .project
            .command(&["down", "--volumes", "--remove-orphans", "-t", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // `down` can leave a one-off `run` container behind when the
        // process that ran it was killed; the project label finds it.
        let label = format!("label=com.docker.compose.project={}", self.project.name);
        for (list, remove) in [
            (
                vec!["ps", "-aq", "--filter", &label],
                vec!["rm", "-f", "-v"],
            ),
            (
                vec!["network", "ls", "-q", "--filter", &label],
                vec!["network", "rm"],
            ),
        ] {
            let ids = Command::new("docker")
                .args(&list)
                .output()
                .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
                .unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(&remove)
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for image in ["radstudy-worker", "radstudy"] {
            let _ = Command::new("docker")
                .args(["rmi", "-f", &format!("{image}:{}", self.image_tag)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Waits until every container reports `healthy`.
fn wait_healthy(containers: &[String]) {
    let deadline = Instant::now() + HEALTHY_DEADLINE;
    loop {
        let output = run_checked(
            Command::new("docker")
                .args(["inspect", "-f", "{{.State.Health.Status}}"])
                .args(containers),
            "docker inspect",
        );
        let states = String::from_utf8_lossy(&output.stdout).into_owned();
        if states.lines().all(|state| state.trim() == "healthy") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "workers not healthy after {HEALTHY_DEADLINE:?}: {states}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn container_logs(container: &str) -> String {
    let output = Command::new("docker")
        .args(["logs", container])
        .output()
        .expect("docker logs runs");
    // The worker logs to standard error.
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Makes the study PKI with `deploy/pki/make-study-pki.sh` in `dir` and
/// returns its folder. The containers run as uid 10001, and the script
/// writes keys readable by their owner only, so where the test runs as
/// root the files go to that uid. Elsewhere the keys are made readable by
/// everyone, which is acceptable only for these throwaway keys.
fn make_study_pki(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let pki = dir.join("pki");
    run_checked(
        Command::new("bash")
            .arg(workspace_root().join("deploy/pki/make-study-pki.sh"))
            .arg(&pki)
            .args(["worker-a", "worker-b", "worker-c"]),
        "deploy/pki/make-study-pki.sh",
    );
    for party in ["coordinator", "worker-a", "worker-b", "worker-c"] {
        let folder = pki.join(party);
        let mut paths = vec![folder.clone()];
        for file in ["cert.pem", "key.pem", "ca.pem"] {
            paths.push(folder.join(file));
        }
        for path in paths {
            if std::os::unix::fs::chown(&path, Some(IMAGE_UID), Some(IMAGE_UID)).is_err() {
                let mode = if path.is_dir() { 0o755 } else { 0o644 };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .expect("make the TLS files readable");
            }
        }
    }
    pki
}

/// Makes `dir` writable by the images' uid: owned by it where the test
/// runs as root, else writable by everyone.
fn make_writable_for_image(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;

    if std::os::unix::fs::chown(dir, Some(IMAGE_UID), Some(IMAGE_UID)).is_err() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777))
            .expect("make the study directory writable");
    }
}

#[test]
fn compose_study_survives_cut_site() {
    if !succeeds("docker", &["info"]) {
        if std::env::var_os(SKIP_VARIABLE).is_some_and(|value| value == "1") {
            eprintln!("skipped: no Docker engine answers `docker info`, and {SKIP_VARIABLE}=1");
            return;
        }
        panic!(
            "no Docker engine answers `docker info`; start one, or set {SKIP_VARIABLE}=1 to skip this test"
        );
    }
    let Some(program) = compose_program() else {
        if std::env::var_os(SKIP_VARIABLE).is_some_and(|value| value == "1") {
            eprintln!(
                "skipped: neither `docker compose` nor `docker-compose` runs, and {SKIP_VARIABLE}=1"
            );
            return;
        }
        panic!(
            "neither `docker compose` nor `docker-compose` runs; install one, or set {SKIP_VARIABLE}=1 to skip this test"
        );
    };

    // The images are built from the binaries of this test's profile.
    let worker = workspace_binary("radstudy-worker").expect("worker binary");
    workspace_binary("radstudy").expect("coordinator binary");
    let profile_dir = worker.parent().expect("profile folder");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("profile name");
    let target_dir = profile_dir.parent().expect("target folder");

    let run_id = std::process::id();
    let image_tag = format!("e2e-{run_id}");
    let temp = tempfile::tempdir().expect("temp dir");
    let out_dir = temp.path().join("study");
    fs::create_dir(&out_dir).expect("create the study directory");
    make_writable_for_image(&out_dir);
    let pki_dir = make_study_pki(temp.path());
    let override_file = temp.path().join("slow-site-c.yml");
    fs::write(&override_file, SLOW_SITE_OVERRIDE).expect("write the compose override");

    let compose_dir = workspace_root().join("deploy/compose");
    let data_dir = fs::canonicalize(data_root()).expect("data root exists");
    let project = Project {
        program,
        name: format!("radstudye2e{run_id}"),
        files: vec![compose_dir.join("docker-compose.yml"), override_file],
        environment: vec![
            ("RADSTUDY_DATA_DIR", data_dir.display().to_string()),
            ("RADSTUDY_OUT_DIR", out_dir.display().to_string()),
            ("RADSTUDY_IMAGE_TAG", image_tag.clone()),
            ("RADSTUDY_PKI_DIR", pki_dir.display().to_string()),
        ],
    };
    let mut teardown = Teardown {
        project: &project,
        image_tag: image_tag.clone(),
        coordinator: None,
    };

    let started = Instant::now();
    run_checked(
        Command::new("bash")
            .arg(workspace_root().join("deploy/build-images.sh"))
            .arg(profile)
            .env("CARGO_TARGET_DIR", target_dir)
            .env("RADSTUDY_IMAGE_TAG", &image_tag),
        "deploy/build-images.sh",
    );
    eprintln!("images built in {:.1} s", started.elapsed().as_secs_f64());

    run_checked(
        &mut project.command(&["up", "-d", "worker-a", "worker-b", "worker-c"]),
        "compose up",
    );
    let workers: Vec<String> = ["worker-a", "worker-b", "worker-c"]
        .iter()
        .map(|service| project.container(service))
        .collect();
    wait_healthy(&workers);
    for container in &workers {
        let logs = container_logs(container);
        assert!(logs.contains("mutual TLS configured"), "{logs}");
    }
    let cut_container = project.container(CUT_SERVICE);
    let cut_network = project.network(CUT_NETWORK);

    let coordinator_log = temp.path().join("coordinator.log");
    let log_file = fs::File::create(&coordinator_log).expect("create the coordinator log");
    let study_started = Instant::now();
    teardown.coordinator = Some(
        project
            .command(&["run", "--rm", "-T", "coordinator"])
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("compose run starts"),
    );

    // Cut site C once its extraction round has started.
    let round_deadline = Instant::now() + ROUND_START_DEADLINE;
    while !container_logs(&cut_container).contains("round started") {
        let exited = teardown
            .coordinator
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten());
        assert!(
            exited.is_none(),
            "the coordinator exited with {exited:?} before site {CUT_CENTER}'s round started:\n{}",
            fs::read_to_string(&coordinator_log).unwrap_or_default()
        );
        assert!(
            Instant::now() < round_deadline,
            "site {CUT_CENTER}'s round did not start within {ROUND_START_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run_checked(
        Command::new("docker").args(["network", "disconnect", &cut_network, &cut_container]),
        "docker network disconnect",
    );
    let cut_logs = container_logs(&cut_container);
    assert!(
        !cut_logs.contains("round finished"),
        "site {CUT_CENTER} finished its round before the cut, so the cut tests nothing:\n{cut_logs}"
    );

    let status = loop {
        let child = teardown.coordinator.as_mut().expect("coordinator started");
        if let Some(status) = child.try_wait().expect("coordinator status") {
            break status;
        }
        assert!(
            study_started.elapsed() < STUDY_DEADLINE,
            "the study did not end within {STUDY_DEADLINE:?}:\n{}",
            fs::read_to_string(&coordinator_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    teardown.coordinator = None;
    let study_time = study_started.elapsed();
    let log = fs::read_to_string(&coordinator_log).unwrap_or_default();
    eprintln!(
        "study ended with {status} after {:.1} s",
        study_time.as_secs_f64()
    );

    assert_eq!(status.code(), Some(3), "coordinator output:\n{log}");
    assert!(
        log.contains(&format!("center {CUT_CENTER} left out: ")),
        "{log}"
    );

    let provenance: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(out_dir.join("provenance.json")).expect("provenance.json written"),
    )
    .expect("provenance.json is JSON");
    let failed = provenance["failed_centers"]
        .as_array()
        .expect("failed_centers is a list");
    assert_eq!(failed.len(), 1, "{provenance:#}");
    assert_eq!(failed[0]["center"], CUT_CENTER, "{provenance:#}");
    let reason = failed[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Extract"),
        "the reason names the interrupted round: {reason}"
    );

    // Only A and B are in the pooled table: 35 and 8 patients.
    let features = fs::read_to_string(out_dir.join("features.csv")).expect("features.csv written");
    let mut centers: Vec<&str> = features
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .collect();
    centers.sort_unstable();
    centers.dedup();
    assert_eq!(centers, ["A", "B"]);
    assert_eq!(features.lines().count() - 1, 43);

    drop(teardown);
    let label = format!("label=com.docker.compose.project={}", project.name);
    let left = run_checked(
        Command::new("docker").args(["ps", "-aq", "--filter", &label]),
        "docker ps",
    );
    assert!(
        left.stdout.is_empty(),
        "containers left after teardown: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
