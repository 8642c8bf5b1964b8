//! Starts the worker: loads the site files, binds the listener and serves
//! the gRPC service until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use radstudy_proto::v1::worker_server::WorkerServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::manifest::Manifest;
use crate::pseudonym::PseudonymKey;
use crate::service::{WorkerService, WorkerState};

/// Options of `radstudy-worker serve` besides the config file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Replaces the config's `data_root`.
    pub data_root: Option<PathBuf>,
    /// File to write the bound address to once the server accepts calls.
    pub ready_file: Option<PathBuf>,
}

/// Loads the config, manifest and key, then serves until a shutdown signal.
pub async fn serve(config_path: &Path, options: ServeOptions) -> anyhow::Result<()> {
    let mut config = WorkerConfig::load(config_path)?;
    if let Some(root) = options.data_root {
        config.data_root = root;
    }
    let manifest = Manifest::load(&config.manifest, &config.data_root)?;
    let key = PseudonymKey::load(&config.pseudonym_key_file)?;
    for row in &manifest.rejected {
        warn!(
            manifest_line = row.problem.line,
            field = %row.problem.field,
            reason = %row.problem.reason,
            "manifest row rejected"
        );
    }
    info!(
        center = %config.center_id,
        patients = manifest.entries.len(),
        rejected_rows = manifest.rejected.len(),
        sequences = ?manifest.sequences,
        "manifest loaded"
    );

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let center = config.center_id.clone();
    let state = WorkerState::new(config, manifest, key)
        .with_context(|| "data_root does not exist or cannot be read".to_string())?;
    let service = WorkerService::new(Arc::new(state));

    if let Some(path) = &options.ready_file {
        write_ready_file(path, &address.to_string())?;
    }
    info!(center = %center, %address, "worker listening");

    tonic::transport::Server::builder()
        .add_service(WorkerServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown_signal())
        .await
        .context("gRPC server failed")?;
    info!(center = %center, "worker stopped");
    Ok(())
}

/// Writes the address atomically, so that a reader never sees half of it.
fn write_ready_file(path: &Path, address: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, address)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Resolves on SIGINT, or on SIGTERM where the platform has it.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => info!("SIGINT received, shutting down"),
        _ = terminate => info!("SIGTERM received, shutting down"),
    }
}
