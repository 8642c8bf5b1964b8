//! `study.toml`: the study plan that the coordinator runs.
//!
//! Relative paths are resolved against the directory of the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::client::dial_in::{DialIn, DialInSettings};
use crate::client::retry::{RetryConfig, RetryPolicy};
use crate::federated::FederatedConfig;
use crate::habitat::HabitatConfig;
use crate::reproducibility::IccConfig;
use crate::scores_only::ValidationConfig;
use crate::tls::{ClientTls, TlsError, TlsSettings};

mod center;
mod features;
mod model;

pub use center::{CenterConfig, CenterMode, CenterRole};
pub use features::FeatureConfig;
pub use model::{
    BestRegionRule, FusionMethod, Harmonization, LassoChoice, ModelConfig, MwuCorrection,
    PenaltyChoice,
};

use center::{check_dial_out_center, check_endpoint};

/// Errors while loading `study.toml`.
#[derive(Debug, thiserror::Error)]
pub enum StudyConfigError {
    /// The file could not be read.
    #[error("cannot read study config {path}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has unknown or mistyped keys.
    #[error("invalid study config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid study config {path}: field `{field}` = {value}: {expected}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The key, in dotted form.
        field: String,
        /// The offending value.
        value: String,
        /// The constraint the value breaks.
        expected: String,
    },
    /// The PyRadiomics parameters of `[features]` are missing or invalid.
    #[error("invalid study config {path}: extraction parameters ({origin}): {message}")]
    Parameters {
        /// The config file.
        path: PathBuf,
        /// The `params` file and inline tables they come from.
        origin: String,
        /// The problem, naming the parameter key and its value.
        message: String,
    },
    /// A file of the `[tls]` table is missing, unreadable or invalid.
    #[error("invalid study config {path}: {error}")]
    Tls {
        /// The config file.
        path: PathBuf,
        /// The problem with the TLS file, part of the message and not a
        /// `source`, so that a printed error chain shows it once.
        error: TlsError,
    },
}

/// Split of development centers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Fraction of each development center's patients, per outcome class,
    /// that go to training; the rest form the internal validation cohort.
    #[serde(default = "default_train_fraction")]
    pub train_fraction: f64,
}

fn default_train_fraction() -> f64 {
    0.7
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            train_fraction: default_train_fraction(),
        }
    }
}

/// Call deadlines.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Deadline for connecting and for each short call, in seconds.
    #[serde(default = "default_call_s")]
    pub call_s: u64,
    /// Deadline for a whole extraction round at one center, in seconds.
    #[serde(default = "default_round_s")]
    pub round_s: u64,
    /// HTTP/2 keep-alive interval and timeout, in seconds: a worker that
    /// stops replying to pings is noticed within about twice this.
    #[serde(default = "default_keepalive_s")]
    pub keepalive_s: u64,
}

fn default_keepalive_s() -> u64 {
    crate::client::DEFAULT_KEEPALIVE.as_secs()
}

fn default_call_s() -> u64 {
    30
}

fn default_round_s() -> u64 {
    3600
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            call_s: default_call_s(),
            round_s: default_round_s(),
            keepalive_s: default_keepalive_s(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    study_id: String,
    #[serde(default = "default_seed")]
    seed: u64,
    sequences: Vec<String>,
    centers: Vec<CenterConfig>,
    #[serde(default)]
    split: SplitConfig,
    #[serde(default)]
    features: features::RawFeatureConfig,
    #[serde(default)]
    model: ModelConfig,
    #[serde(default)]
    timeouts: TimeoutConfig,
    #[serde(default)]
    retry: RetryConfig,
    #[serde(default)]
    icc: IccConfig,
    #[serde(default)]
    validation: ValidationConfig,
    #[serde(default)]
    federated: FederatedConfig,
    #[serde(default)]
    tls: Option<TlsSettings>,
    #[serde(default)]
    habitat: HabitatConfig,
    #[serde(default)]
    dial_in: Option<DialInSettings>,
}

fn default_seed() -> u64 {
    42
}

/// A validated study plan.
#[derive(Debug, Clone)]
pub struct StudyConfig {
    /// Study id sent with every request; workers may restrict which they serve.
    pub study_id: String,
    /// Seed of every random step (the split, today).
    pub seed: u64,
    /// Sequences to extract, as named in the workers' manifests.
    pub sequences: Vec<String>,
    /// Centers and their roles.
    pub centers: Vec<CenterConfig>,
    /// Development-center split.
    pub split: SplitConfig,
    /// Extraction settings.
    pub features: FeatureConfig,
    /// Selection and model settings.
    pub model: ModelConfig,
    /// Call deadlines.
    pub timeouts: TimeoutConfig,
    /// Retries of calls that failed with a transient error.
    pub retry: RetryConfig,
    /// Reproducibility (ICC) filter.
    pub icc: IccConfig,
    /// External validation.
    pub validation: ValidationConfig,
    /// Federated fitting.
    pub federated: FederatedConfig,
    /// Mutual TLS files (`[tls]`), loaded and checked; `None` allows only
    /// `http://` endpoints on loopback addresses.
    pub tls: Option<ClientTls>,
    /// Habitat method; off by default.
    pub habitat: HabitatConfig,
    /// The listener of dial-out workers (`[dial_in]`); `None` when every
    /// center is direct.
    pub dial_in: Option<DialIn>,
}

impl StudyConfig {
    /// Loads and validates a study file.
    pub fn load(path: &Path) -> Result<Self, StudyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| StudyConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates study TOML. `path` names the file in errors, and
    /// the paths of `[tls]` are relative to its folder; those files are read
    /// and checked here.
    pub fn parse(text: &str, path: &Path) -> Result<Self, StudyConfigError> {
        let raw: RawStudy = toml::from_str(text).map_err(|error| StudyConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        let invalid = |field: &str, value: String, expected: &str| StudyConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            value,
            expected: expected.to_string(),
        };

        let id_ok = |id: &str, extra: &str| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        if !id_ok(&raw.study_id, "-_.:") {
            return Err(invalid(
                "study_id",
                format!("{:?}", raw.study_id),
                "1 to 128 characters from A-Z, a-z, 0-9, '-', '_', '.' and ':'",
            ));
        }
        if raw.sequences.is_empty() {
            return Err(invalid("sequences", "[]".into(), "at least one sequence"));
        }
        for (index, sequence) in raw.sequences.iter().enumerate() {
            if raw.sequences[..index].contains(sequence) {
                return Err(invalid(
                    "sequences",
                    format!("{sequence:?} twice"),
                    "each sequence once",
                ));
            }
        }
        let features = raw.features.validate(path)?;
        if raw.centers.is_empty() {
            return Err(invalid(
                "centers",
                "[]".into(),
                "at least one [[centers]] table",
            ));
        }
        for (index, center) in raw.centers.iter().enumerate() {
            if !id_ok(&center.id, "-_") || center.id.len() > 32 {
                return Err(invalid(
                    "centers.id",
                    format!("{:?}", center.id),
                    "1 to 32 characters from A-Z, a-z, 0-9, '_' and '-'",
                ));
            }
            if raw.centers[..index]
                .iter()
                .any(|other| other.id == center.id)
            {
                return Err(invalid(
                    "centers.id",
                    format!("{:?}", center.id),
                    "unique center ids",
                ));
            }
            if center.mode == CenterMode::DialOut {
                if let Err((field, value, expected)) =
                    check_dial_out_center(center, raw.dial_in.is_some(), raw.tls.is_some())
                {
                    return Err(invalid(field, value, &expected));
                }
                if let Some(name) = &center.server_name
                    && raw.centers[..index].iter().any(|other| {
                        other.mode == CenterMode::DialOut
                            && other
                                .server_name
                                .as_ref()
                                .is_some_and(|other| other.eq_ignore_ascii_case(name))
                    })
                {
                    return Err(invalid(
                        "centers.server_name",
                        format!("{name:?}"),
                        "a different server_name for each dial-out center, because it identifies \
                         the worker that dials in",
                    ));
                }
            } else if let Err(expected) = check_endpoint(center, raw.tls.is_some()) {
                return Err(invalid(
                    "centers.endpoint",
                    format!("{:?}", center.endpoint),
                    &expected,
                ));
            }
        }
        if let Some(dial_in) = &raw.dial_in
            && let Err((field, value, expected)) = dial_in.check(raw.tls.is_some())
        {
            return Err(invalid(field, value, expected));
        }
        if !raw
            .centers
            .iter()
            .any(|c| c.role == CenterRole::Development)
        {
            return Err(invalid(
                "centers.role",
                "no \"development\" center".into(),
                "at least one development center to train on",
            ));
        }
        let fraction = raw.split.train_fraction;
        if !(0.5..=0.9).contains(&fraction) {
            return Err(invalid(
                "split.train_fraction",
                fraction.to_string(),
                "between 0.5 and 0.9",
            ));
        }
        let alpha = raw.model.mwu_alpha;
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(invalid(
                "model.mwu_alpha",
                alpha.to_string(),
                "between 0 and 1, exclusive",
            ));
        }
        if !(raw.model.c.is_finite() && raw.model.c > 0.0) {
            return Err(invalid(
                "model.c",
                raw.model.c.to_string(),
                "a finite number > 0",
            ));
        }
        if raw.model.fallback_features == 0 {
            return Err(invalid("model.fallback_features", "0".into(), "at least 1"));
        }
        if raw.model.lasso_folds < 2 {
            return Err(invalid(
                "model.lasso_folds",
                raw.model.lasso_folds.to_string(),
                "at least 2",
            ));
        }
        if raw.model.lasso_repeats < 1 {
            return Err(invalid("model.lasso_repeats", "0".into(), "at least 1"));
        }
        if raw.model.cv_folds < 2 {
            return Err(invalid(
                "model.cv_folds",
                raw.model.cv_folds.to_string(),
                "at least 2",
            ));
        }
        if raw.model.cv_repeats < 1 {
            return Err(invalid("model.cv_repeats", "0".into(), "at least 1"));
        }
        for (field, value) in [
            ("timeouts.call_s", raw.timeouts.call_s),
            ("timeouts.round_s", raw.timeouts.round_s),
            ("timeouts.keepalive_s", raw.timeouts.keepalive_s),
        ] {
            if value == 0 {
                return Err(invalid(field, "0".into(), "at least 1 second"));
            }
        }
        for check in [
            raw.retry.check(),
            raw.icc.check(),
            raw.validation.check(),
            raw.habitat.check(),
        ] {
            if let Err((field, value, expected)) = check {
                return Err(invalid(field, value, expected));
            }
        }

        let tls = match raw.tls {
            Some(settings) => {
                let base = path.parent().unwrap_or(Path::new(""));
                let settings = TlsSettings {
                    ca: base.join(settings.ca),
                    cert: base.join(settings.cert),
                    key: base.join(settings.key),
                };
                Some(
                    ClientTls::load(&settings).map_err(|error| StudyConfigError::Tls {
                        path: path.to_path_buf(),
                        error,
                    })?,
                )
            }
            None => None,
        };

        Ok(StudyConfig {
            study_id: raw.study_id,
            seed: raw.seed,
            sequences: raw.sequences,
            centers: raw.centers,
            split: raw.split,
            features,
            model: raw.model,
            timeouts: raw.timeouts,
            retry: raw.retry,
            icc: raw.icc,
            validation: raw.validation,
            federated: raw.federated,
            tls,
            habitat: raw.habitat,
            dial_in: raw.dial_in.map(DialIn::new),
        })
    }

    /// Deadline of a short call.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.call_s)
    }

    /// Deadline of an extraction round.
    pub fn round_timeout(&self) -> Duration {
        Duration::from_secs(self.timeouts.round_s)
    }

    /// HTTP/2 keep-alive interval and timeout.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.timeouts.keepalive_s)
    }

    /// Retry policy of every call: the `[retry]` settings, with every
    /// call's attempts and waits bounded by the round deadline.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(&self.retry, self.round_timeout())
    }
}

#[cfg(test)]
mod tests;
