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
//!
//! With a `[tls]` table the gRPC listener serves mutual TLS (see
//! [`crate::tls`]). Without one it serves plaintext, which the config
//! allows only on a loopback address. With a `[dial_out]` table the worker
//! binds no gRPC listener and serves the connections that it opens to the
//! coordinator instead (see [`crate::dial_out`]).

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
use crate::dial_out::dial_connections;
use crate::manifest::Manifest;
use crate::metrics::serve_metrics;
use crate::pseudonym::PseudonymKey;
use crate::service::{WorkerService, WorkerState};
use crate::tls::dial_out::dial_out_client_config;
use crate::tls::pem_files::{format_utc, unix_now};
use crate::tls::{EXPIRY_WARNING_DAYS, ServerTls, TlsSettings, accept_tls};

/// Options of `radstudy-worker serve` besides the config file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Replaces the config's `data_root`.
    pub data_root: Option<PathBuf>,
    /// File to write the bound address to once the server accepts calls;
    /// in dial-out mode, the coordinator address that the worker dials.
    pub ready_file: Option<PathBuf>,
}

/// Loads the config, manifest and key, then serves until a shutdown signal.
pub async fn serve(config_path: &Path, options: ServeOptions) -> anyhow::Result<()> {
    let mut config = WorkerConfig::load(config_path)?;
    if let Some(root) = options.data_root {
        config.data_root = root;
    }
    let tls = match &config.tls {
        Some(settings) => Some(load_server_tls(settings, &config.center_id)?),
        None => None,
    };
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

    // A dial-out worker opens no gRPC listener.
    let dial_out = config.dial_out.clone();
    let listener = match &dial_out {
        Some(_) => None,
        None => Some(
            TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?,
        ),
    };
    let address = match (&listener, &dial_out) {
        (Some(listener), _) => listener
            .local_addr()
            .context("cannot read the bound address")?
            .to_string(),
        (None, settings) => settings
            .as_ref()
            .map(|settings| settings.coordinator.clone())
            .unwrap_or_default(),
    };
    let dial_out_tls = match (&dial_out, &config.tls) {
        (Some(_), Some(settings)) => Some(dial_out_client_config(settings)?),
        _ => None,
    };
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
        write_ready_file(path, &address)?;
    }
    if dial_out.is_some() {
        info!(center = %center, coordinator = %address, tls = tls.is_some(), "worker dialing out");
    } else {
        info!(center = %center, %address, tls = tls.is_some(), "worker listening");
    }

    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(WorkerServer::new(service));
    let served = match (listener, tls) {
        (None, _) => {
            let settings = dial_out.context("a dial-out worker has [dial_out] settings")?;
            router
                .serve_with_incoming_shutdown(
                    dial_connections(settings, center.clone(), dial_out_tls),
                    shutdown_signal_then_not_serving(health),
                )
                .await
        }
        (Some(listener), Some(tls)) => {
            router
                .serve_with_incoming_shutdown(
                    accept_tls(listener, tls.acceptor()),
                    shutdown_signal_then_not_serving(health),
                )
                .await
        }
        (Some(listener), None) => {
            router
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(listener),
                    shutdown_signal_then_not_serving(health),
                )
                .await
        }
    };
    let _ = metrics_stop.send(());
    served.context("gRPC server failed")?;
    info!(center = %center, "worker stopped");
    Ok(())
}

/// Loads and checks the `[tls]` files, and warns when the certificate
/// expires within [`EXPIRY_WARNING_DAYS`].
fn load_server_tls(settings: &TlsSettings, center: &str) -> anyhow::Result<ServerTls> {
    let tls = ServerTls::load(settings)?;
    let days_left = tls.days_left(unix_now());
    info!(
        center,
        subject = %tls.certificate.subject,
        dns_names = ?tls.certificate.dns_names,
        not_after = %format_utc(tls.certificate.not_after),
        allowed_clients = ?tls.allowed_clients,
        "mutual TLS configured"
    );
    if days_left < EXPIRY_WARNING_DAYS {
        warn!(
            center,
            path = %settings.cert.display(),
            days_left,
            "the worker's TLS certificate expires soon; issue a new one and restart"
        );
    }
    Ok(tls)
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
/// optionally with an `http://` or `https://` prefix.
///
/// With `tls`, the `[tls]` table of the worker being probed, the probe
/// connects over mutual TLS as that worker itself: it presents the worker's
/// own certificate, which the worker always accepts, and trusts
/// `client_ca` for the server certificate.
pub async fn probe_health(
    address: &str,
    service: &str,
    timeout: std::time::Duration,
    tls: Option<&TlsSettings>,
) -> anyhow::Result<ServingStatus> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let (host_port, https) = health_host_port(address)?;
    if https && tls.is_none() {
        anyhow::bail!(
            "address {address:?} asks for TLS; pass --config with the worker.toml whose [tls] table the probe uses"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{host_port}"))
        .with_context(|| format!("invalid address {address:?}; expected host:port"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if let Some(settings) = tls {
        endpoint = endpoint
            .tls_config(health_tls_config(settings)?)
            .context("invalid TLS settings for the health probe")?;
    }
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
        .with_context(|| {
            let hint = if tls.is_none() {
                "; if the worker's worker.toml has a [tls] table, pass it with --config"
            } else {
                ""
            };
            format!("health check of service {service:?} at {host_port} failed{hint}")
        })?;
    Ok(response.into_inner().status())
}

/// Builds the client TLS settings with which the health probe connects to
/// the worker of `settings`. The server name is the first DNS name of the
/// worker's certificate, else its common name.
fn health_tls_config(settings: &TlsSettings) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    // Loading checks every file as `serve` does, so the probe fails with
    // the same message as the worker would.
    let own = ServerTls::load(settings)?;
    let server_name = own
        .certificate
        .dns_names
        .first()
        .or(own.certificate.common_name.as_ref())
        .cloned()
        .with_context(|| {
            format!(
                "tls.cert {} has neither a DNS name nor a common name to check the worker against",
                settings.cert.display()
            )
        })?;
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&settings.client_ca)?))
        .identity(Identity::from_pem(
            read(&settings.cert)?,
            read(&settings.key)?,
        ))
        .domain_name(server_name))
}

/// Strips an optional `http://` or `https://` prefix and a trailing `/`
/// from a health probe address, and rejects other schemes. The flag is
/// whether the prefix was `https://`.
fn health_host_port(address: &str) -> anyhow::Result<(&str, bool)> {
    let (host_port, https) = match address.strip_prefix("https://") {
        Some(rest) => (rest, true),
        None => (address.strip_prefix("http://").unwrap_or(address), false),
    };
    let host_port = host_port.strip_suffix('/').unwrap_or(host_port);
    if host_port.contains("://") || host_port.contains('/') {
        anyhow::bail!(
            "invalid address {address:?}; expected host:port, http://host:port or https://host:port"
        );
    }
    Ok((host_port, https))
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
    fn health_address_accepts_scheme_prefixes() {
        assert_eq!(
            health_host_port("127.0.0.1:50051").unwrap(),
            ("127.0.0.1:50051", false)
        );
        assert_eq!(
            health_host_port("http://127.0.0.1:50051").unwrap(),
            ("127.0.0.1:50051", false)
        );
        assert_eq!(
            health_host_port("http://worker:50051/").unwrap(),
            ("worker:50051", false)
        );
        assert_eq!(
            health_host_port("https://worker:50051").unwrap(),
            ("worker:50051", true)
        );
    }

    #[tokio::test]
    async fn health_https_without_tls_settings_is_rejected() {
        let error = probe_health(
            "https://127.0.0.1:1",
            "",
            std::time::Duration::from_secs(1),
            None,
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("--config"), "{error}");
    }

    #[test]
    fn health_address_rejects_other_schemes_and_paths() {
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
