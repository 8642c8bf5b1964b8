//! Starts the worker: loads the site files, binds the listener and serves
//! the gRPC service until SIGINT or SIGTERM.
//!
//! Besides `radstudy.v1.Worker`, the server carries the standard gRPC
//! health service (`grpc.health.v1.Health`). It reports SERVING for the
//! whole server (service name "") and for `radstudy.v1.Worker` from the
//! first call, because the server starts serving only after the config,
//! manifest, key and data root have loaded. It turns NOT_SERVING when a
//! shutdown signal arrives, while in-flight calls finish. With
//! `metrics_listen` set, a second listener serves Prometheus metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use radstudy_proto::v1::worker_server::WorkerServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

use crate::config::WorkerConfig;
use crate::manifest::Manifest;
use crate::metrics::serve_metrics;
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
    let metrics_listener = match config.metrics_listen {
        Some(metrics_address) => Some(
            TcpListener::bind(metrics_address)
                .await
                .with_context(|| format!("cannot listen on metrics_listen {metrics_address}"))?,
        ),
        None => None,
    };
    let center = config.center_id.clone();
    let state = Arc::new(
        WorkerState::new(config, manifest, key)
            .with_context(|| "data_root does not exist or cannot be read".to_string())?,
    );
    let service = WorkerService::new(state.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<WorkerServer<WorkerService>>().await;

    // Stops the metrics endpoint when the gRPC server returns.
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = metrics_listener {
        let metrics_address = listener
            .local_addr()
            .context("cannot read the bound metrics address")?;
        info!(center = %center, address = %metrics_address, "metrics endpoint listening");
        tokio::spawn(serve_metrics(listener, state.metrics().clone(), async {
            let _ = metrics_stopped.await;
        }));
    }

    if let Some(path) = &options.ready_file {
        write_ready_file(path, &address.to_string())?;
    }
    info!(center = %center, %address, "worker listening");

    let served = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(WorkerServer::new(service))
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            shutdown_signal_then_not_serving(health),
        )
        .await;
    let _ = metrics_stop.send(());
    served.context("gRPC server failed")?;
    info!(center = %center, "worker stopped");
    Ok(())
}

/// Waits for a shutdown signal, then reports NOT_SERVING for the server and
/// the worker service, so that health checks fail while calls drain.
async fn shutdown_signal_then_not_serving(health: HealthReporter) {
    shutdown_signal().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    health
        .set_not_serving::<WorkerServer<WorkerService>>()
        .await;
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

/// Asks the gRPC health service at `address` (`host:port`) for the status
/// of `service` ("" for the whole server) within `timeout`.
pub async fn probe_health(
    address: &str,
    service: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<ServingStatus> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .with_context(|| format!("invalid address {address:?}; expected host:port"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {address}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .with_context(|| format!("health check of service {service:?} at {address} failed"))?;
    Ok(response.into_inner().status())
}
