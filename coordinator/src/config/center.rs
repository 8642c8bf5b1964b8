//! The centers of a study: their role, connection mode and the checks of
//! their endpoint settings.

use serde::Deserialize;

use crate::tls::is_loopback_host;

/// The use of a center's patients in the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CenterRole {
    /// Split into training and internal validation patients.
    Development,
    /// All patients form the external validation cohort.
    External,
}

/// Connection direction between the coordinator and a center's worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CenterMode {
    /// The coordinator connects to the worker's `endpoint`.
    #[default]
    Direct,
    /// The worker connects to the coordinator's `[dial_in]` listener, so
    /// the hospital opens no inbound port.
    DialOut,
}

/// One center of the study.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CenterConfig {
    /// Center id; must equal the id the worker reports.
    pub id: String,
    /// Worker endpoint: `https://host:port`, or `http://host:port` for a
    /// worker on a loopback address. Empty for a dial-out center.
    #[serde(default)]
    pub endpoint: String,
    /// What the center's patients are used for.
    pub role: CenterRole,
    /// Name that the worker's TLS certificate must contain (its subject
    /// common name or a subjectAltName DNS name). In direct mode the
    /// endpoint's host when unset; a dial-out center over TLS must set it,
    /// because it identifies the worker that dials in.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Direct (the default) or dial-out.
    #[serde(default)]
    pub mode: CenterMode,
}

/// Checks a dial-out center; `Err` gives the key, the value and the
/// expected form.
pub(super) fn check_dial_out_center(
    center: &CenterConfig,
    has_dial_in: bool,
    has_tls: bool,
) -> Result<(), (&'static str, String, String)> {
    if !center.endpoint.is_empty() {
        return Err((
            "centers.endpoint",
            format!("{:?}", center.endpoint),
            "no endpoint for a dial-out center, because its worker connects to [dial_in] listen; \
             remove endpoint, or remove mode = \"dial_out\""
                .into(),
        ));
    }
    if !has_dial_in {
        return Err((
            "centers.mode",
            "\"dial_out\"".into(),
            "a [dial_in] table with listen = \"host:port\" for the workers to connect to".into(),
        ));
    }
    match (&center.server_name, has_tls) {
        (None, true) => Err((
            "centers.server_name",
            "none".into(),
            format!(
                "the name in the worker certificate of center {:?} (its CN or a DNS name), \
                 because it identifies the worker that dials in",
                center.id
            ),
        )),
        (Some(name), false) => Err((
            "centers.server_name",
            format!("{name:?}"),
            "a [tls] table, because server_name applies only to TLS".into(),
        )),
        (Some(name), true) if name.trim().is_empty() => Err((
            "centers.server_name",
            format!("{name:?}"),
            "a certificate name, not empty".into(),
        )),
        _ => Ok(()),
    }
}

/// Checks a center's endpoint and server name; `Err` gives the expected
/// form. `https://` needs `[tls]`, and `http://` is allowed only for a
/// worker on a loopback address, because plaintext gRPC would expose the
/// released tables on the network.
pub(super) fn check_endpoint(center: &CenterConfig, has_tls: bool) -> Result<(), String> {
    let uri: tonic::transport::Uri = center
        .endpoint
        .parse()
        .map_err(|error| format!("a URL such as \"https://worker-a.example:50051\" ({error})"))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !has_tls => Err(
            "an https:// endpoint needs a [tls] table with ca, cert and key in study.toml".into(),
        ),
        Some("https") => Ok(()),
        Some("http") if !is_loopback_host(host) => Err(format!(
            "https:// and a [tls] table for a worker on {host:?}; http:// is allowed only for \
             loopback addresses (127.0.0.0/8, ::1, localhost)"
        )),
        Some("http") if center.server_name.is_some() => {
            Err("an https:// endpoint, because server_name applies only to TLS".into())
        }
        Some("http") => Ok(()),
        _ => Err("a URL starting with https:// (or http:// on loopback)".into()),
    }?;
    if let Some(name) = &center.server_name
        && tokio_rustls::rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
    {
        return Err(format!(
            "a valid DNS name or IP address as server_name, not {name:?}"
        ));
    }
    Ok(())
}
