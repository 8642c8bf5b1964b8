//! The site's `worker.toml`: where the worker listens, where its data lives,
//! and what its policy lets leave the site.
//!
//! Relative paths in the file are resolved against the directory that holds
//! the file, so a configuration can be moved together with its manifest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dial_out::DialOutSettings;
use crate::tls::TlsSettings;

/// Errors while loading `worker.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read worker config {path}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid worker config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A key has a value outside its allowed range.
    #[error("invalid worker config {path}: field `{field}` = {value}: {expected}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The key, in dotted form.
        field: &'static str,
        /// The offending value as written.
        value: String,
        /// The constraint the value breaks.
        expected: &'static str,
    },
}

/// The site policy: what may leave this worker.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Smallest number of patients over which any table or aggregate is
    /// released.
    #[serde(default = "default_min_patients")]
    pub min_patients: u32,
    /// Smallest number of patients per outcome class in any labelled release.
    #[serde(default = "default_min_per_class")]
    pub min_per_class: u32,
    /// Whether the pseudonymised per-patient feature table may leave the
    /// site. Off unless the site turns it on.
    #[serde(default)]
    pub share_feature_tables: bool,
    /// Whether the site serves `ScoreModel`: it scores its patients with a
    /// frozen model and releases only ROC points, confusion counts and
    /// calibration sums, never a per-patient score. On unless the site turns
    /// it off, because only aggregates over at least `min_patients` patients
    /// and `min_per_class` per outcome class leave the site.
    #[serde(default = "default_scores_only_validation")]
    pub scores_only_validation: bool,
    /// Study ids this worker serves; empty serves any study.
    #[serde(default)]
    pub allowed_studies: Vec<String>,
}

fn default_min_patients() -> u32 {
    5
}

fn default_min_per_class() -> u32 {
    1
}

fn default_scores_only_validation() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_patients: default_min_patients(),
            min_per_class: default_min_per_class(),
            share_feature_tables: false,
            scores_only_validation: default_scores_only_validation(),
            allowed_studies: Vec::new(),
        }
    }
}

/// Geometry tolerances for comparing an image with its mask.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeometryTolerance {
    /// Largest accepted difference between image and mask origins, in mm.
    #[serde(default = "default_origin_mm")]
    pub origin_mm: f64,
    /// Largest accepted relative difference between voxel spacings.
    #[serde(default = "default_spacing_relative")]
    pub spacing_relative: f64,
    /// Largest accepted difference between direction cosines.
    #[serde(default = "default_direction")]
    pub direction: f64,
}

fn default_origin_mm() -> f64 {
    1e-3
}

fn default_spacing_relative() -> f64 {
    1e-4
}

fn default_direction() -> f64 {
    1e-4
}

impl Default for GeometryTolerance {
    fn default() -> Self {
        GeometryTolerance {
            origin_mm: default_origin_mm(),
            spacing_relative: default_spacing_relative(),
            direction: default_direction(),
        }
    }
}

/// `worker.toml` as written by the site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    center_id: String,
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    metrics_listen: Option<String>,
    data_root: PathBuf,
    manifest: PathBuf,
    pseudonym_key_file: PathBuf,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    geometry_tolerance: GeometryTolerance,
    #[serde(default)]
    extraction_threads: Option<usize>,
    #[serde(default = "default_max_rounds_kept")]
    max_rounds_kept: usize,
    #[serde(default = "default_audit_log")]
    audit_log: PathBuf,
    #[serde(default = "default_output_dir")]
    output_dir: PathBuf,
    #[serde(default = "default_cache_dir")]
    cache_dir: PathBuf,
    #[serde(default)]
    tls: Option<TlsSettings>,
    #[serde(default)]
    dial_out: Option<DialOutSettings>,
}

fn default_audit_log() -> PathBuf {
    PathBuf::from("audit.jsonl")
}

fn default_output_dir() -> PathBuf {
    PathBuf::from("habitat-maps")
}

fn default_cache_dir() -> PathBuf {
    PathBuf::from("cache")
}

fn default_max_rounds_kept() -> usize {
    64
}

fn default_listen() -> String {
    "127.0.0.1:50051".to_string()
}

/// A validated worker configuration with absolute paths.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Center identifier shown to the coordinator, for example `A`.
    pub center_id: String,
    /// Address to listen on; port 0 picks a free port. Unused in dial-out
    /// mode, which opens no gRPC listener.
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (HTTP, `GET /metrics`);
    /// `None`, the default, serves no metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Directory that every manifest path is relative to.
    pub data_root: PathBuf,
    /// The cohort manifest CSV.
    pub manifest: PathBuf,
    /// File with the site's pseudonym key.
    pub pseudonym_key_file: PathBuf,
    /// The site's release policy.
    pub policy: Policy,
    /// Image/mask geometry tolerances.
    pub geometry_tolerance: GeometryTolerance,
    /// Patients extracted at once; defaults to the number of cores.
    pub extraction_threads: usize,
    /// Maximum number of finished rounds kept in memory. When a round
    /// finishes beyond it, the oldest finished round is dropped, and calls
    /// for that round return "call Extract first".
    pub max_rounds_kept: usize,
    /// Append-only audit log, one JSON line per answered or refused request;
    /// `audit.jsonl` next to the config file unless set.
    pub audit_log: PathBuf,
    /// Local directory of the habitat maps (label NIfTI and overlay PNG)
    /// that `ApplyHabitatModel` writes when asked; files are named by
    /// pseudonym and never sent. `habitat-maps` next to the config file
    /// unless set.
    pub output_dir: PathBuf,
    /// Local directory of the per-patient result cache: the features of
    /// each extracted patient and sequence, keyed by the SHA-256 of its
    /// image and mask files and of every setting that changes the values,
    /// so that a restarted worker reuses them. `cache` next to the config
    /// file unless set.
    pub cache_dir: PathBuf,
    /// Mutual TLS files (`[tls]`), with absolute paths; `None` serves
    /// plaintext gRPC, which is allowed only on a loopback address.
    pub tls: Option<TlsSettings>,
    /// Dial-out mode (`[dial_out]`): the worker connects to the coordinator
    /// instead of listening. `None` listens on `listen`.
    pub dial_out: Option<DialOutSettings>,
}

impl WorkerConfig {
    /// Loads and validates `worker.toml`, resolving relative paths against
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, path)
    }

    /// Parses and validates the TOML text of a config whose relative paths
    /// are resolved against `base`; `path` only names the file in errors.
    pub fn parse(text: &str, base: &Path, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;

        let invalid =
            |field: &'static str, value: String, expected: &'static str| ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                value,
                expected,
            };

        let center_ok = !raw.center_id.is_empty()
            && raw.center_id.len() <= 32
            && raw
                .center_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !center_ok {
            return Err(invalid(
                "center_id",
                format!("{:?}", raw.center_id),
                "1 to 32 characters from A-Z, a-z, 0-9, '_' and '-'",
            ));
        }
        if let (Some(text), Some(_)) = (&raw.listen, &raw.dial_out) {
            return Err(invalid(
                "listen",
                format!("{text:?}"),
                "no `listen` with a [dial_out] table, because a dial-out worker opens no gRPC \
                 listener; remove `listen`",
            ));
        }
        let listen_text = raw.listen.clone().unwrap_or_else(default_listen);
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{listen_text:?}"),
                "an address such as \"127.0.0.1:50051\"",
            )
        })?;
        // Plaintext gRPC would expose the released tables on the network.
        if raw.tls.is_none() && raw.dial_out.is_none() && !listen.ip().is_loopback() {
            return Err(invalid(
                "listen",
                format!("{listen_text:?}"),
                "a loopback address (127.0.0.0/8 or ::1) unless worker.toml has a [tls] table \
                 with cert, key and client_ca; add one to serve mutual TLS on this address",
            ));
        }
        if let Some(tls) = &raw.tls
            && let Some(empty) = tls
                .allowed_clients
                .iter()
                .find(|name| name.trim().is_empty())
        {
            return Err(invalid(
                "tls.allowed_clients",
                format!("{empty:?}"),
                "certificate common names or DNS names, none empty",
            ));
        }
        let metrics_listen = match &raw.metrics_listen {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "metrics_listen",
                    format!("{text:?}"),
                    "an address such as \"127.0.0.1:9464\"",
                )
            })?),
        };
        if let Some(dial_out) = &raw.dial_out
            && let Err((field, value, expected)) = dial_out.check(raw.tls.is_some())
        {
            return Err(invalid(field, value, expected));
        }
        if let Some(metrics) = metrics_listen
            && raw.dial_out.is_none()
            && metrics.port() != 0
            && metrics == listen
        {
            return Err(invalid(
                "metrics_listen",
                format!("{:?}", metrics.to_string()),
                "an address other than `listen`",
            ));
        }
        if raw.policy.min_patients < 1 {
            return Err(invalid("policy.min_patients", "0".into(), "at least 1"));
        }
        let tolerance = &raw.geometry_tolerance;
        for (field, value) in [
            ("geometry_tolerance.origin_mm", tolerance.origin_mm),
            (
                "geometry_tolerance.spacing_relative",
                tolerance.spacing_relative,
            ),
            ("geometry_tolerance.direction", tolerance.direction),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(field, value.to_string(), "a finite number >= 0"));
            }
        }
        let extraction_threads = match raw.extraction_threads {
            Some(0) => return Err(invalid("extraction_threads", "0".into(), "at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        if raw.max_rounds_kept < 1 {
            return Err(invalid("max_rounds_kept", "0".into(), "at least 1"));
        }

        Ok(WorkerConfig {
            center_id: raw.center_id,
            listen,
            metrics_listen,
            data_root: base.join(raw.data_root),
            manifest: base.join(raw.manifest),
            pseudonym_key_file: base.join(raw.pseudonym_key_file),
            policy: raw.policy,
            geometry_tolerance: raw.geometry_tolerance,
            extraction_threads,
            max_rounds_kept: raw.max_rounds_kept,
            audit_log: base.join(raw.audit_log),
            output_dir: base.join(raw.output_dir),
            cache_dir: base.join(raw.cache_dir),
            tls: raw.tls.map(|tls| tls.resolved(base)),
            dial_out: raw.dial_out,
        })
    }
}

#[cfg(test)]
mod tests;
