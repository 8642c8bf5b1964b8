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

use crate::audit::AuditLog;
use crate::check::cohort_policy_problems;
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
    for (field, reason) in cohort_policy_problems(&manifest, &config.policy) {
        warn!(
            center = %config.center_id,
            field,
            %reason,
            "cohort is below the site policy"
        );
    }

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
    let audit = AuditLog::open(&config.audit_log)
        .with_context(|| format!("cannot start the worker of {}", config_path.display()))?;
    info!(path = %audit.path().display(), "audit log opened");
    let center = config.center_id.clone();
    let data_root = std::path::absolute(&config.data_root).unwrap_or(config.data_root.clone());
    let state = Arc::new(WorkerState::new(config, manifest, key, audit).with_context(|| {
        format!(
            "data root {} does not exist or cannot be read; set data_root in {} or pass --data-root DIR",
            data_root.display(),
            config_path.display()
        )
    })?);
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

/// Asks the gRPC health service at `address` for the status of `service`
/// ("" for the whole server) within `timeout`. The address is `host:port`,
/// optionally with an `http://` prefix. `https://` is rejected, because the
/// worker serves gRPC without TLS.
pub async fn probe_health(
    address: &str,
    service: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<ServingStatus> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let host_port = health_host_port(address)?;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{host_port}"))
        .with_context(|| format!("invalid address {address:?}; expected host:port"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint.connect().await.map_err(|error| {
        anyhow::anyhow!(
            "cannot connect to {host_port}: {}",
            distinct_error_chain(&error)
        )
    })?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .with_context(|| format!("health check of service {service:?} at {host_port} failed"))?;
    Ok(response.into_inner().status())
}

/// Strips an optional `http://` prefix and trailing `/` from a health probe
/// address, and rejects other schemes.
fn health_host_port(address: &str) -> anyhow::Result<&str> {
    if address.starts_with("https://") {
        anyhow::bail!(
            "invalid address {address:?}: the worker serves gRPC without TLS; \
             expected host:port or http://host:port"
        );
    }
    let host_port = address.strip_prefix("http://").unwrap_or(address);
    let host_port = host_port.strip_suffix('/').unwrap_or(host_port);
    if host_port.contains("://") || host_port.contains('/') {
        anyhow::bail!("invalid address {address:?}; expected host:port or http://host:port");
    }
    Ok(host_port)
}

/// Joins an error's message with those of its sources, as `a: b: c`,
/// leaving out a message that its source repeats. hyper's connect error
/// and its source both print "tcp connect error", for example.
fn distinct_error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }
    let mut kept: Vec<&str> = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let repeated_by_source = messages
            .get(index + 1)
            .is_some_and(|next| next == message || next.starts_with(&format!("{message}: ")));
        if !repeated_by_source {
            kept.push(message);
        }
    }
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_address_accepts_http_prefix() {
        assert_eq!(
            health_host_port("127.0.0.1:50051").unwrap(),
            "127.0.0.1:50051"
        );
        assert_eq!(
            health_host_port("http://127.0.0.1:50051").unwrap(),
            "127.0.0.1:50051"
        );
        assert_eq!(
            health_host_port("http://worker:50051/").unwrap(),
            "worker:50051"
        );
    }

    #[test]
    fn health_address_rejects_https_and_paths() {
        let https = health_host_port("https://127.0.0.1:50051").unwrap_err();
        assert!(https.to_string().contains("without TLS"), "{https}");
        let path = health_host_port("http://127.0.0.1:50051/health").unwrap_err();
        assert!(path.to_string().contains("expected host:port"), "{path}");
        let scheme = health_host_port("grpc://127.0.0.1:50051").unwrap_err();
        assert!(
            scheme.to_string().contains("expected host:port"),
            "{scheme}"
        );
    }

    #[test]
    fn error_chain_drops_repeated_messages() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|layer| layer as _)
            }
        }

        let error = Layer(
            "transport error",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer(
                    "tcp connect error",
                    Some(Box::new(Layer("Connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            distinct_error_chain(&error),
            "transport error: tcp connect error: Connection refused"
        );
    }
}
