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
use crate::tls::{ClientTls, TlsError, TlsSettings, is_loopback_host};

mod features;

pub use features::FeatureConfig;

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

/// Harmonisation of feature values across centers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Harmonization {
    /// Feature values are used as the centers report them.
    None,
    /// Parametric empirical-Bayes ComBat with the development centers'
    /// training patients as the reference batch.
    Combat,
    /// Non-parametric empirical-Bayes ComBat, same reference.
    CombatNonParametric,
}

/// Rule that picks λ from the LASSO cross-validation curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LassoChoice {
    /// The λ with the smallest mean CV deviance (glmnet's `lambda.min`).
    Min,
    /// The largest λ within one standard error of that minimum (glmnet's
    /// `lambda.1se`); sparser.
    OneSe,
}

/// Rule that picks the best region r*, on which the fusion model is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BestRegionRule {
    /// Highest mean repeated stratified k-fold CV AUC on training patients,
    /// with the whole selection chain refitted in each fold.
    CvAuc,
    /// Highest mean AUC on the internal validation cohort. It is
    /// optimistic, because those patients then take part in a modelling
    /// choice, so selection.json flags it.
    InternalValidation,
}

/// Method by which the fusion model combines the sequences on the best
/// region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionMethod {
    /// Feature-level fusion: one chain on the union of the single models'
    /// selected features.
    Concat,
    /// Score-level fusion: a logistic regression on the single models'
    /// radscores, fitted on out-of-fold radscores of training patients.
    Stacking,
}

/// Multiple-testing correction of the Mann-Whitney p-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MwuCorrection {
    /// Raw p-values are compared with `mwu_alpha`.
    None,
    /// Benjamini-Hochberg q-values (false discovery rate) are compared with
    /// `mwu_alpha`.
    BenjaminiHochberg,
}

/// Penalty of the models' logistic regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyChoice {
    /// L2 with inverse strength `c`, as scikit-learn's default.
    L2,
    /// None: maximum likelihood, R's `glm` stopping rule; under separation
    /// the model is refitted with C = 1 and the refit is recorded.
    None,
}

fn default_mwu_correction() -> MwuCorrection {
    MwuCorrection::None
}

fn default_penalty() -> PenaltyChoice {
    PenaltyChoice::L2
}

/// Feature selection and model settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Features with a two-sided Mann-Whitney U p-value below this pass.
    #[serde(default = "default_mwu_alpha")]
    pub mwu_alpha: f64,
    /// When no feature passes, the features with the smallest p-values are
    /// kept, this many.
    #[serde(default = "default_fallback_features")]
    pub fallback_features: usize,
    /// Multiple-testing correction of the Mann-Whitney p-values before the
    /// threshold: none (default) or Benjamini-Hochberg.
    #[serde(default = "default_mwu_correction")]
    pub mwu_correction: MwuCorrection,
    /// Penalty of the logistic regression: L2 with `c` (default), or none
    /// (maximum likelihood, refitted with C = 1 when it separates).
    #[serde(default = "default_penalty")]
    pub penalty: PenaltyChoice,
    /// Whether a cross-validated binomial LASSO selects among the features
    /// that pass Mann-Whitney U.
    #[serde(default = "default_true")]
    pub lasso: bool,
    /// The λ rule of the LASSO.
    #[serde(default = "default_lasso_choice")]
    pub lasso_choice: LassoChoice,
    /// Cross-validation folds of the LASSO, stratified on the outcome.
    #[serde(default = "default_lasso_folds")]
    pub lasso_folds: usize,
    /// Fold partitions whose CV curves are averaged.
    #[serde(default = "default_lasso_repeats")]
    pub lasso_repeats: usize,
    /// Whether the fusion model runs one more LASSO on the union of the
    /// sequences' selected features.
    #[serde(default = "default_true")]
    pub fusion_relasso: bool,
    /// Inverse L2 penalty strength of the logistic regression, as
    /// scikit-learn's `C`.
    #[serde(default = "default_c")]
    pub c: f64,
    /// Rule that picks the best region for the fusion model.
    #[serde(default = "default_best_region")]
    pub best_region: BestRegionRule,
    /// Folds of the best-region cross-validation and of the out-of-fold
    /// radscores of stacking, stratified on the outcome.
    #[serde(default = "default_cv_folds")]
    pub cv_folds: usize,
    /// Fold partitions of the best-region cross-validation.
    #[serde(default = "default_cv_repeats")]
    pub cv_repeats: usize,
    /// Method by which the fusion model combines the sequences.
    #[serde(default = "default_fusion")]
    pub fusion: FusionMethod,
    /// Stratified bootstrap replicates for the percentile CIs of AUC,
    /// sensitivity and specificity; 0 turns the bootstrap off.
    #[serde(default = "default_bootstrap_replicates")]
    pub bootstrap_replicates: usize,
    /// Harmonisation across centers, off by default.
    #[serde(default = "default_harmonization")]
    pub harmonization: Harmonization,
}

fn default_harmonization() -> Harmonization {
    Harmonization::None
}

fn default_mwu_alpha() -> f64 {
    0.05
}

fn default_fallback_features() -> usize {
    10
}

fn default_true() -> bool {
    true
}

fn default_lasso_choice() -> LassoChoice {
    LassoChoice::Min
}

fn default_lasso_folds() -> usize {
    10
}

fn default_lasso_repeats() -> usize {
    1
}

fn default_c() -> f64 {
    1.0
}

fn default_bootstrap_replicates() -> usize {
    2000
}

fn default_best_region() -> BestRegionRule {
    BestRegionRule::CvAuc
}

fn default_cv_folds() -> usize {
    10
}

fn default_cv_repeats() -> usize {
    10
}

fn default_fusion() -> FusionMethod {
    FusionMethod::Concat
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            mwu_alpha: default_mwu_alpha(),
            fallback_features: default_fallback_features(),
            mwu_correction: default_mwu_correction(),
            penalty: default_penalty(),
            lasso: true,
            lasso_choice: default_lasso_choice(),
            lasso_folds: default_lasso_folds(),
            lasso_repeats: default_lasso_repeats(),
            fusion_relasso: true,
            c: default_c(),
            best_region: default_best_region(),
            cv_folds: default_cv_folds(),
            cv_repeats: default_cv_repeats(),
            fusion: default_fusion(),
            bootstrap_replicates: default_bootstrap_replicates(),
            harmonization: default_harmonization(),
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

/// Checks a dial-out center; `Err` gives the key, the value and the
/// expected form.
fn check_dial_out_center(
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
fn check_endpoint(center: &CenterConfig, has_tls: bool) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: &str = r#"
study_id = "s1"
sequences = ["T1W"]
[[centers]]
id = "A"
endpoint = "http://127.0.0.1:1"
role = "development"
[[centers]]
id = "B"
endpoint = "http://127.0.0.1:2"
role = "external"
"#;

    #[test]
    fn study_config_defaults_follow_method() {
        let study = StudyConfig::parse(STUDY, Path::new("study.toml")).expect("valid study");
        assert_eq!(study.seed, 42);
        assert_eq!(study.split.train_fraction, 0.7);
        assert_eq!(study.model.mwu_alpha, 0.05);
        assert_eq!(study.model.c, 1.0);
        assert_eq!(study.features.bin_width, 25.0);
        assert_eq!(study.model.best_region, BestRegionRule::CvAuc);
        assert_eq!(study.model.cv_folds, 10);
        assert_eq!(study.model.cv_repeats, 10);
        assert_eq!(study.model.fusion, FusionMethod::Concat);
    }

    #[test]
    fn study_config_reads_region_and_fusion_keys() {
        let text = format!(
            "{STUDY}\n[model]\nbest_region = \"internal_validation\"\ncv_folds = 5\ncv_repeats = 3\nfusion = \"stacking\"\n"
        );
        let study = StudyConfig::parse(&text, Path::new("study.toml")).expect("valid study");
        assert_eq!(study.model.best_region, BestRegionRule::InternalValidation);
        assert_eq!(study.model.cv_folds, 5);
        assert_eq!(study.model.cv_repeats, 3);
        assert_eq!(study.model.fusion, FusionMethod::Stacking);
    }

    #[test]
    fn study_config_rejects_one_cv_fold() {
        let text = format!("{STUDY}\n[model]\ncv_folds = 1\n");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("model.cv_folds"), "{error}");
    }

    #[test]
    fn study_config_rejects_zero_cv_repeats() {
        let text = format!("{STUDY}\n[model]\ncv_repeats = 0\n");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("model.cv_repeats"), "{error}");
    }

    #[test]
    fn study_config_rejects_unknown_fusion() {
        let text = format!("{STUDY}\n[model]\nfusion = \"average\"\n");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("average"), "{error}");
    }

    #[test]
    fn study_config_rejects_duplicate_center() {
        let text = STUDY.replace("id = \"B\"", "id = \"A\"");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("centers.id"), "{error}");
    }

    #[test]
    fn study_config_rejects_out_of_range_fraction() {
        let text = format!("{STUDY}\n[split]\ntrain_fraction = 0.95\n");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(
            error.to_string().contains("split.train_fraction"),
            "{error}"
        );
    }

    #[test]
    fn study_config_requires_development_center() {
        let text = STUDY.replace("role = \"development\"", "role = \"external\"");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("development"), "{error}");
    }

    #[test]
    fn study_config_rejects_plaintext_to_remote_worker() {
        let text = STUDY.replace("http://127.0.0.1:2", "http://worker-b.example:50051");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("centers.endpoint"), "{error}");
        assert!(error.to_string().contains("loopback"), "{error}");
    }

    #[test]
    fn study_config_accepts_plaintext_on_loopback() {
        let text = STUDY
            .replace("http://127.0.0.1:1", "http://localhost:50051")
            .replace("http://127.0.0.1:2", "http://[::1]:50052");
        let study = StudyConfig::parse(&text, Path::new("study.toml")).expect("loopback");
        assert!(study.tls.is_none());
    }

    #[test]
    fn study_config_https_needs_tls_table() {
        let text = STUDY.replace("http://127.0.0.1:2", "https://worker-b.example:50051");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("[tls]"), "{error}");
    }

    #[test]
    fn study_config_server_name_needs_https() {
        let text = STUDY.replace(
            "role = \"external\"",
            "role = \"external\"\nserver_name = \"worker-b\"",
        );
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("server_name"), "{error}");
    }

    #[test]
    fn study_config_tls_missing_file_is_named() {
        let text = format!(
            "{}\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/c.pem\"\nkey = \"pki/c.key\"\n",
            STUDY.replace("http://127.0.0.1:2", "https://worker-b.example:50051")
        );
        let error = StudyConfig::parse(&text, Path::new("/nonexistent/study.toml")).unwrap_err();
        // Relative paths are resolved against the folder of study.toml.
        assert!(
            error.to_string().contains("/nonexistent/pki/ca.pem"),
            "{error}"
        );
        assert!(error.to_string().contains("tls.ca"), "{error}");
    }

    #[test]
    fn study_config_tls_missing_file_cause_once() {
        let text = format!(
            "{}\n[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/c.pem\"\nkey = \"pki/c.key\"\n",
            STUDY.replace("http://127.0.0.1:2", "https://worker-b.example:50051")
        );
        let error = StudyConfig::parse(&text, Path::new("/nonexistent/study.toml")).unwrap_err();
        // `radstudy` prints errors with anyhow's `{:#}`, which appends the
        // message of every `source()`. The operating system's "No such file
        // or directory (os error 2)" must appear once, not once per layer.
        let printed = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(printed.matches("os error").count(), 1, "{printed}");
        assert!(
            printed.ends_with("check the path in the [tls] table"),
            "{printed}"
        );
    }

    #[test]
    fn study_config_tls_table_loads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["coordinator".into()]).expect("valid SAN");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let certificate = params.self_signed(&key).expect("self-signed");
        std::fs::write(dir.path().join("c.pem"), certificate.pem()).expect("write cert");
        std::fs::write(dir.path().join("c.key"), key.serialize_pem()).expect("write key");
        let text = format!(
            "{}\nserver_name = \"site-b\"\n[tls]\nca = \"c.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n",
            STUDY.replace("http://127.0.0.1:2", "https://10.1.2.3:50051")
        );
        let study = StudyConfig::parse(&text, &dir.path().join("study.toml"))
            .expect("study with [tls] is valid");
        let tls = study.tls.expect("[tls] is loaded");
        assert_eq!(tls.settings.key, dir.path().join("c.key"));
        assert_eq!(study.centers[1].server_name.as_deref(), Some("site-b"));
    }

    #[test]
    fn study_config_names_unknown_key() {
        let text = format!("{STUDY}\n[model]\nalpha = 0.1\n");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("alpha"), "{error}");
    }

    /// STUDY with center B in dial-out mode over plaintext loopback.
    fn dial_out_study() -> String {
        format!(
            "{}\n[dial_in]\nlisten = \"127.0.0.1:0\"\n",
            STUDY.replace("endpoint = \"http://127.0.0.1:2\"", "mode = \"dial_out\"")
        )
    }

    #[test]
    fn study_config_dial_out_center_is_parsed() {
        let study =
            StudyConfig::parse(&dial_out_study(), Path::new("study.toml")).expect("valid study");
        assert_eq!(study.centers[0].mode, CenterMode::Direct);
        assert_eq!(study.centers[1].mode, CenterMode::DialOut);
        assert_eq!(study.centers[1].endpoint, "");
        let dial_in = study.dial_in.expect("[dial_in] is kept");
        assert_eq!(dial_in.settings.listen, "127.0.0.1:0");
        assert_eq!(dial_in.settings.wait_s, 60);
    }

    #[test]
    fn study_config_dial_out_needs_dial_in_table() {
        let text = dial_out_study().replace("[dial_in]\nlisten = \"127.0.0.1:0\"\n", "");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("centers.mode"), "{error}");
        assert!(error.to_string().contains("[dial_in]"), "{error}");
    }

    #[test]
    fn study_config_dial_out_with_endpoint_is_rejected() {
        let text = dial_out_study().replace(
            "mode = \"dial_out\"",
            "mode = \"dial_out\"\nendpoint = \"http://127.0.0.1:2\"",
        );
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("remove endpoint"), "{error}");
    }

    #[test]
    fn study_config_dial_in_rejects_public_plaintext() {
        let text = dial_out_study().replace("127.0.0.1:0", "0.0.0.0:7443");
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("dial_in.listen"), "{error}");
        assert!(error.to_string().contains("[tls]"), "{error}");
    }

    #[test]
    fn study_config_dial_out_plaintext_rejects_server_name() {
        let text = dial_out_study().replace(
            "mode = \"dial_out\"",
            "mode = \"dial_out\"\nserver_name = \"worker-b\"",
        );
        let error = StudyConfig::parse(&text, Path::new("study.toml")).unwrap_err();
        assert!(error.to_string().contains("centers.server_name"), "{error}");
    }
}
