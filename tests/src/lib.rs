//! Helpers shared by the end-to-end tests: where the data and binaries
//! are, and how to start a worker on a free loopback port or in dial-out
//! mode.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use radstudy::client::dial_in::{DialIn, DialInSettings};
use radstudy::config::{CenterConfig, CenterMode, CenterRole, StudyConfig};
use radstudy::demo::WorkerProcess;

/// Default data root, relative to the workspace root: the repository's
/// sibling `shared/data` folder.
pub const DEFAULT_DATA_ROOT: &str = "../shared/data";

/// Returns the workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Returns the data root: `$RADSTUDY_DATA_ROOT`, else [`DEFAULT_DATA_ROOT`]
/// under the workspace root.
///
/// # Panics
///
/// When the folder does not exist, with a message that names it and the
/// setting, because every later error would only say "No such file".
pub fn data_root() -> PathBuf {
    let root = match std::env::var_os("RADSTUDY_DATA_ROOT") {
        Some(root) => PathBuf::from(root),
        None => workspace_root().join(DEFAULT_DATA_ROOT),
    };
    assert!(
        root.is_dir(),
        "data root {} not found: these tests read the real data sets (sts/, pyradiomics/, ibsi/); \
         set RADSTUDY_DATA_ROOT to the folder that holds them",
        root.display()
    );
    root
}

/// Returns the path of a workspace binary built next to the test binary
/// (`target/<profile>/NAME`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("unexpected test binary location {}", exe.display()))?;
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        path.is_file(),
        "{} not found; `cargo test --workspace` builds it",
        path.display()
    );
    Ok(path)
}

/// A worker to start for a test.
pub struct TestCenter {
    /// Center id.
    pub id: String,
    /// Role in the study.
    pub role: CenterRole,
    /// Data root of its manifest.
    pub data_root: PathBuf,
    /// Its cohort manifest.
    pub manifest: PathBuf,
    /// Whether its policy shares the feature table.
    pub share_feature_tables: bool,
}

/// Started workers and the study centers that point at them.
pub struct RunningCenters {
    /// The worker processes; dropping them stops the workers.
    pub processes: Vec<WorkerProcess>,
    /// Study entries with the workers' actual endpoints.
    pub centers: Vec<CenterConfig>,
}

/// Writes a config and key for each center into `dir` and starts its
/// worker process on a free loopback port.
pub fn start_workers(dir: &Path, centers: &[TestCenter]) -> anyhow::Result<RunningCenters> {
    start_workers_in_mode(dir, centers, None)
}

/// Returns the study entries of `centers` in dial-out mode: no endpoint,
/// and no server name, because the test workers dial plaintext loopback.
pub fn dial_out_centers(centers: &[TestCenter]) -> Vec<CenterConfig> {
    centers.iter().map(dial_out_center).collect()
}

fn dial_out_center(center: &TestCenter) -> CenterConfig {
    CenterConfig {
        id: center.id.clone(),
        endpoint: String::new(),
        role: center.role,
        server_name: None,
        mode: CenterMode::DialOut,
    }
}

/// Gives `study` a plaintext dial-in listener on a free loopback port,
/// starts it for the study's current centers, and returns its address.
pub async fn start_dial_in(study: &mut StudyConfig) -> anyhow::Result<SocketAddr> {
    study.dial_in = Some(DialIn::new(DialInSettings {
        listen: "127.0.0.1:0".into(),
        wait_s: 60,
    }));
    let hub = match &study.dial_in {
        Some(dial_in) => dial_in.start(study).await?,
        None => anyhow::bail!("the dial-in settings were just set"),
    };
    Ok(hub.local_addr())
}

/// Writes a config and key for each center into `dir` and starts its
/// worker process in dial-out mode towards the plaintext dial-in listener
/// at `coordinator`. The returned centers are the dial-out study entries.
pub fn start_dial_out_workers(
    dir: &Path,
    centers: &[TestCenter],
    coordinator: SocketAddr,
) -> anyhow::Result<RunningCenters> {
    start_workers_in_mode(dir, centers, Some(coordinator))
}

/// Starts the workers of `centers`: listening on a free loopback port, or
/// dialling `dial_out` when it is set.
fn start_workers_in_mode(
    dir: &Path,
    centers: &[TestCenter],
    dial_out: Option<SocketAddr>,
) -> anyhow::Result<RunningCenters> {
    let binary = workspace_binary("radstudy-worker")?;
    let mut processes = Vec::new();
    let mut configs = Vec::new();
    for center in centers {
        let key = dir.join(format!("{}.key", center.id));
        // A fixed key per center keeps pseudonyms, and so the split, stable.
        let key_hex: String = center
            .id
            .bytes()
            .cycle()
            .take(32)
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(&key, key_hex)?;
        let config = dir.join(format!("worker_{}.toml", center.id));
        std::fs::write(
            &config,
            format!(
                "center_id = {id:?}\n{transport}data_root = {root:?}\nmanifest = {manifest:?}\n\
                 pseudonym_key_file = {key:?}\n[policy]\nshare_feature_tables = {share}\n{dial_out}",
                id = center.id,
                root = center.data_root,
                manifest = center.manifest,
                key = key,
                share = center.share_feature_tables,
                transport = match dial_out {
                    Some(_) => String::new(),
                    None => "listen = \"127.0.0.1:0\"\n".to_string(),
                },
                dial_out = match dial_out {
                    // A one-second backoff cap keeps a redial within the
                    // tests' patience.
                    Some(address) =>
                        format!("[dial_out]\ncoordinator = \"{address}\"\nbackoff_max_s = 1\n"),
                    None => String::new(),
                },
            ),
        )?;
        let log = dir.join(format!("worker_{}.log", center.id));
        let process = WorkerProcess::start(&binary, &config, &log)?;
        configs.push(match dial_out {
            Some(_) => dial_out_center(center),
            None => CenterConfig {
                id: center.id.clone(),
                endpoint: format!("http://{}", process.address),
                role: center.role,
                // The test workers listen on loopback and serve plaintext.
                server_name: None,
                mode: CenterMode::Direct,
            },
        });
        processes.push(process);
    }
    Ok(RunningCenters {
        processes,
        centers: configs,
    })
}

/// Loads the STS example's study.toml and points it at `centers`.
pub fn sts_study(centers: Vec<CenterConfig>) -> anyhow::Result<StudyConfig> {
    let mut study = StudyConfig::load(&workspace_root().join("examples/sts/study.toml"))?;
    study.centers = centers;
    Ok(study)
}
