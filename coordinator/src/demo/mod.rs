//! `radstudy demo`: a whole study on a synthetic two-center cohort.
//!
//! Generates the cohort as NIfTI files, writes a worker config and key per
//! center, starts one `radstudy-worker` process per center on a free
//! loopback port, runs the study against them, and stops them.

pub mod synth;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::{
    CenterConfig, CenterRole, FeatureConfig, ModelConfig, SplitConfig, StudyConfig, TimeoutConfig,
};
use crate::federated::FederatedConfig;
use crate::reproducibility::IccConfig;
use crate::run::{StudyOutcome, run_study};
use crate::scores_only::ValidationConfig;

/// Environment variable naming the worker binary, for layouts where it is
/// not next to `radstudy`.
pub const WORKER_BIN_ENV: &str = "RADSTUDY_WORKER_BIN";

/// How long a worker may take to start listening.
const WORKER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds `radstudy-worker`: `$RADSTUDY_WORKER_BIN`, else next to the
/// running executable.
pub fn find_worker_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(WORKER_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    let name = format!("radstudy-worker{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join(&name));
        // Test binaries live one level deeper, in target/<profile>/deps.
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(&name));
        }
    }
    candidates.into_iter().find(|path| path.is_file()).with_context(|| {
        format!(
            "{name} not found next to {}; build the whole workspace (`cargo build`) or set {WORKER_BIN_ENV}",
            exe.display()
        )
    })
}

/// A worker process that is stopped when dropped.
pub struct WorkerProcess {
    child: Child,
    /// The address the worker listens on.
    pub address: String,
}

impl WorkerProcess {
    /// Starts `radstudy-worker serve --config CONFIG` and waits until it
    /// writes its address, or fails with the worker's exit status.
    pub fn start(binary: &Path, config: &Path, log: &Path) -> anyhow::Result<Self> {
        let ready_file = config.with_extension("ready");
        let _ = std::fs::remove_file(&ready_file);
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--ready-file")
            .arg(&ready_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut process = WorkerProcess {
            child,
            address: String::new(),
        };

        let started = Instant::now();
        loop {
            if let Ok(address) = std::fs::read_to_string(&ready_file) {
                process.address = address.trim().to_string();
                return Ok(process);
            }
            if let Some(status) = process.child.try_wait()? {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let mut tail: Vec<&str> = text.lines().rev().take(5).collect();
                tail.reverse();
                bail!(
                    "worker exited with {status} before listening; last lines of {}:\n{}",
                    log.display(),
                    tail.join("\n")
                );
            }
            if started.elapsed() > WORKER_START_TIMEOUT {
                bail!(
                    "worker did not listen within {} s; see {}",
                    WORKER_START_TIMEOUT.as_secs(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns the worker's process id, for tests that signal it.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops the worker: SIGTERM, then SIGKILL if it has not exited after
    /// five seconds.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        #[cfg(unix)]
        {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill(2) with a pid of our own child and a valid
                // signal number has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a worker config and pseudonym key for a demo center that listens
/// on a free port.
fn write_worker_config(
    dir: &Path,
    center: &synth::SyntheticCenter,
    seed: u64,
) -> anyhow::Result<PathBuf> {
    let key = dir.join(format!("center_{}.key", center.center_id));
    write_demo_key(&key, seed, &center.center_id)?;
    let config = dir.join(format!("worker_{}.toml", center.center_id));
    let text = format!(
        "# Demo worker for synthetic center {id}.\n\
         center_id = \"{id}\"\n\
         listen = \"127.0.0.1:0\"\n\
         data_root = {root:?}\n\
         manifest = {manifest:?}\n\
         pseudonym_key_file = {key:?}\n\n\
         [policy]\n\
         # The demo shares its synthetic feature table; a hospital decides this itself.\n\
         share_feature_tables = true\n",
        id = center.center_id,
        root = center.data_root,
        manifest = center.manifest,
        key = key,
    );
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    Ok(config)
}

/// Writes a random 32-byte hex key, as `radstudy-worker keygen` does.
/// Writes the demo center's pseudonym key, derived from the demo seed and
/// the center id. A hospital's key is secret and random. The demo's is
/// derived, so its pseudonyms, split and results are the same in any
/// output folder.
fn write_demo_key(path: &Path, seed: u64, center_id: &str) -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};

    let mut hasher = Sha256::new();
    hasher.update(b"radstudy-demo-pseudonym-key\0");
    hasher.update(seed.to_le_bytes());
    hasher.update(center_id.as_bytes());
    std::fs::write(path, format!("{}\n", hex::encode(hasher.finalize())))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the demo into `out_dir` and returns the study's outcome.
pub async fn run_demo(out_dir: &Path, show_progress: bool) -> anyhow::Result<StudyOutcome> {
    let data_dir = out_dir.join("data");
    let spec = synth::SyntheticSpec::demo_default();
    let started = Instant::now();
    let centers =
        synth::generate(&data_dir, &spec).context("cannot generate the synthetic cohort")?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "synthetic cohort generated"
    );

    let binary = find_worker_binary()?;
    let workers_dir = out_dir.join("workers");
    std::fs::create_dir_all(&workers_dir)
        .with_context(|| format!("cannot create {}", workers_dir.display()))?;
    let mut processes = Vec::new();
    let mut center_configs = Vec::new();
    for (index, center) in centers.iter().enumerate() {
        let config = write_worker_config(&workers_dir, center, spec.seed)?;
        let log = workers_dir.join(format!("worker_{}.log", center.center_id));
        let process = WorkerProcess::start(&binary, &config, &log)?;
        center_configs.push(CenterConfig {
            id: center.center_id.clone(),
            endpoint: format!("http://{}", process.address),
            role: if index == 0 {
                CenterRole::Development
            } else {
                CenterRole::External
            },
            // The demo's workers listen on loopback and serve plaintext.
            server_name: None,
            mode: crate::config::CenterMode::Direct,
        });
        processes.push(process);
    }

    let study = StudyConfig {
        study_id: "radstudy-demo".to_string(),
        seed: spec.seed,
        sequences: spec.sequences.clone(),
        centers: center_configs,
        split: SplitConfig::default(),
        features: FeatureConfig::default(),
        model: ModelConfig::default(),
        timeouts: TimeoutConfig::default(),
        retry: Default::default(),
        icc: IccConfig::default(),
        validation: ValidationConfig::default(),
        federated: FederatedConfig::default(),
        tls: None,
        // The synthetic lesions carry the outcome in their inner core, so
        // the demo models each habitat next to the whole lesion.
        habitat: crate::habitat::config::HabitatConfig {
            enabled: true,
            ..Default::default()
        },
        dial_in: None,
    };
    // Every demo run is a new study on a new synthetic cohort, so the
    // checkpoints of an earlier demo in the same folder are removed
    // instead of rejecting the run.
    let study_dir = out_dir.join("study");
    let state_dir = study_dir.join(crate::checkpoint::STATE_DIR);
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir)
            .with_context(|| format!("cannot remove {}", state_dir.display()))?;
    }
    let outcome = run_study(&study, &study_dir, show_progress).await;
    for process in &mut processes {
        process.stop();
    }
    Ok(outcome?)
}
