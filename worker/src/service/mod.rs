//! The worker's gRPC service: `Describe`, `Extract`, `FetchFeatureTable`,
//! and the aggregate calls of contract 1.1, `FetchReproducibilitySums`,
//! `LogisticStep` and `ScoreModel`.
//!
//! Rounds are idempotent by (study id, round id). The first `Extract` of a
//! round computes it in a background task that keeps running if the caller
//! disconnects, and stores the result. Any later `Extract` of the same round
//! replays the stored events, and the other calls read its table and
//! perturbed copies. The worker keeps at most `max_rounds_kept` finished
//! rounds and drops the oldest finished one beyond that, so a later call
//! for a dropped round returns "call Extract first", and `Extract` runs it
//! again. Errors map to gRPC codes in [`status_for`], in one place.
//!
//! Submodules: `rounds` runs `Extract`, `aggregates` serves the
//! aggregate calls, `audited` writes each call's audit-log record, and
//! `habitat` and `habitat_apply` run the habitat rounds of contract 1.2,
//! `ComputeSupervoxels` and `ApplyHabitatModel`, with `habitat_store`
//! keeping them, `habitat_options` and `habitat_summary` for their
//! settings and sums, and `habitat_extract` for `Extract` over their
//! regions. `cached_extract` runs each patient and sequence of a round
//! through the on-disk result cache ([`crate::cache`]), and `round_tally`
//! collects the finished jobs in plan order.

mod aggregates;
mod audited;
#[cfg(test)]
mod cache_tests;
mod cached_extract;
mod habitat;
mod habitat_apply;
mod habitat_extract;
mod habitat_options;
mod habitat_store;
mod habitat_summary;
#[cfg(test)]
mod habitat_tests;
mod handlers;
#[cfg(test)]
mod parameters_tests;
mod round_tally;
mod rounds;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use radstudy_proto::v1::{
    ExtractEvent, FeatureRow, FeatureTableChunk, PatientResult, RoundSummary,
};
use tokio_stream::Stream;
use tonic::Status;
use tracing::{info, warn};

use crate::audit::AuditLog;
use crate::cache::ResultCache;
use crate::config::WorkerConfig;
use crate::manifest::Manifest;
use crate::metrics::WorkerMetrics;
use crate::pseudonym::PseudonymKey;
use rounds::ValidatedExtract;

/// Rows per feature-table chunk when the request leaves it to the worker.
pub const DEFAULT_ROWS_PER_CHUNK: usize = 256;

/// Region name of the whole-tumour mask.
pub const WHOLE_REGION: &str = "whole";

/// Everything a round request can get wrong, mapped to a gRPC status by
/// [`status_for`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A request field is invalid.
    #[error("invalid request field `{field}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The problem with its value.
        reason: String,
    },
    /// The site policy does not allow this request.
    #[error("refused by the site policy of center {center}: {reason}")]
    PolicyRefused {
        /// The center.
        center: String,
        /// The policy rule that rejected the request, and its value.
        reason: String,
    },
    /// The round has not been run on this worker.
    #[error(
        "round {round_id} of study {study_id} has not been run on this worker; call Extract first"
    )]
    UnknownRound {
        /// The study.
        study_id: String,
        /// The round.
        round_id: String,
    },
    /// The round id was used before with other settings.
    #[error(
        "round {round_id} was already run with other sequences, settings, perturbation or pseudonyms; use a new round id"
    )]
    RoundConflict {
        /// The round.
        round_id: String,
    },
    /// The round has no perturbed copies.
    #[error(
        "round {round_id} ran without `perturbation`, so it has no perturbed copies; run Extract with `perturbation` set under a new round id"
    )]
    NoPerturbation {
        /// The round.
        round_id: String,
    },
    /// Fewer patients than the policy's `min_patients` would be released.
    #[error("rejected by the site policy of center {center}: {reason}")]
    BelowMinimum {
        /// The center.
        center: String,
        /// The count and the policy minimum it falls below.
        reason: String,
    },
    /// A computation broke an invariant that the worker should keep.
    #[error("internal error: {reason}; please report it")]
    Internal {
        /// What failed.
        reason: String,
    },
}

/// Maps each request error to its gRPC status code.
pub fn status_for(error: &RequestError) -> Status {
    let message = error.to_string();
    match error {
        RequestError::InvalidField { .. } => Status::invalid_argument(message),
        RequestError::PolicyRefused { .. } => Status::permission_denied(message),
        RequestError::UnknownRound { .. } => Status::not_found(message),
        RequestError::RoundConflict { .. }
        | RequestError::NoPerturbation { .. }
        | RequestError::BelowMinimum { .. } => Status::failed_precondition(message),
        RequestError::Internal { .. } => Status::internal(message),
    }
}

/// Logs a rejected request and returns its gRPC status.
fn reject(error: RequestError) -> Status {
    match &error {
        RequestError::Internal { .. } => tracing::error!(%error, "request failed"),
        _ => warn!(%error, "request rejected"),
    }
    status_for(&error)
}

/// A finished round.
#[derive(Debug)]
struct RoundResult {
    /// The request the round ran with, to detect reuse of an id.
    request: ValidatedExtract,
    events: Vec<PatientResult>,
    summary: RoundSummary,
    feature_names: Vec<String>,
    rows: Vec<FeatureRow>,
    /// Pseudonyms of every patient with a job in the round, extracted or
    /// excluded, sorted.
    patients: Vec<String>,
    /// Perturbed copies, when the round ran with `perturbation`.
    copies: Option<RoundCopies>,
}

/// The perturbed copies of a round. They stay in memory and are never sent;
/// only their ICC sums leave the site.
#[derive(Debug)]
struct RoundCopies {
    /// Copies per patient, k.
    repeats: u32,
    /// One entry per sequence of the request, in its order.
    sequences: Vec<SequenceCopies>,
    /// Patient-sequence pairs whose original extracted but whose copies
    /// failed.
    n_excluded: u32,
}

/// The copies of one sequence and region.
#[derive(Debug)]
struct SequenceCopies {
    sequence: String,
    region: String,
    /// Patients with all k copies extracted, sorted by pseudonym.
    patients: Vec<PatientCopies>,
}

/// One patient's copies: k rows in repeat order, each with one finite value
/// per feature name of the round.
#[derive(Debug)]
struct PatientCopies {
    pseudonym: String,
    values: Vec<Vec<f64>>,
}

type RoundKey = (String, String);
type RoundSlot = Arc<tokio::sync::Mutex<Option<Arc<RoundResult>>>>;

/// The rounds of this process, running and finished.
#[derive(Default)]
struct RoundStore {
    /// One slot per (study id, round id). A slot is empty while its round
    /// runs and contains the result once it finishes.
    slots: HashMap<RoundKey, RoundSlot>,
    /// Keys of finished rounds, oldest first. Running rounds are not in it,
    /// so they are never evicted.
    finished: VecDeque<RoundKey>,
}

/// Shared state of one worker process.
pub struct WorkerState {
    config: WorkerConfig,
    manifest: Manifest,
    key: PseudonymKey,
    canonical_root: PathBuf,
    rounds: Mutex<RoundStore>,
    habitat: Mutex<habitat_store::HabitatStore>,
    metrics: WorkerMetrics,
    audit: AuditLog,
    cache: ResultCache,
    /// [`PseudonymKey::identity`] of `key`, part of every cache key.
    key_identity: String,
}

impl WorkerState {
    /// Creates the state from a loaded configuration, manifest, key and
    /// opened audit log, and opens the result cache in `cache_dir`.
    pub fn new(
        config: WorkerConfig,
        manifest: Manifest,
        key: PseudonymKey,
        audit: AuditLog,
    ) -> std::io::Result<Self> {
        let canonical_root = std::fs::canonicalize(&config.data_root)?;
        let cache = ResultCache::open(&config.cache_dir);
        let key_identity = key.identity();
        Ok(WorkerState {
            config,
            manifest,
            key,
            canonical_root,
            rounds: Mutex::new(RoundStore::default()),
            habitat: Mutex::new(habitat_store::HabitatStore::default()),
            metrics: WorkerMetrics::new(),
            audit,
            cache,
            key_identity,
        })
    }

    /// Returns the worker's metrics, which the metrics endpoint serves.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    fn check_study(&self, study_id: &str) -> Result<(), RequestError> {
        let valid = !study_id.is_empty()
            && study_id.len() <= 128
            && study_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !valid {
            return Err(RequestError::InvalidField {
                field: "study_id",
                reason: "must be 1 to 128 characters from A-Z, a-z, 0-9, '-', '_', '.' and ':'"
                    .into(),
            });
        }
        let allowed = &self.config.policy.allowed_studies;
        if !allowed.is_empty() && !allowed.iter().any(|s| s == study_id) {
            return Err(RequestError::PolicyRefused {
                center: self.config.center_id.clone(),
                reason: format!("study {study_id:?} is not in allowed_studies"),
            });
        }
        Ok(())
    }

    fn lock_rounds(&self) -> std::sync::MutexGuard<'_, RoundStore> {
        match self.rounds.lock() {
            Ok(rounds) => rounds,
            // Every update under this lock is a single insert, push or
            // remove, so a panic while holding it leaves the store consistent.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn slot(&self, key: RoundKey) -> RoundSlot {
        self.lock_rounds().slots.entry(key).or_default().clone()
    }

    fn finished_round(&self, key: &RoundKey) -> Option<Arc<RoundResult>> {
        let slot = self.lock_rounds().slots.get(key).cloned()?;
        slot.try_lock().ok().and_then(|guard| guard.clone())
    }

    /// Marks the round `key` as finished and evicts the oldest finished
    /// rounds beyond `max_rounds_kept`. A call that already has an evicted
    /// round's slot finishes with it, and later calls for that round get
    /// [`RequestError::UnknownRound`].
    fn keep_finished_round(&self, key: RoundKey) {
        let max_kept = self.config.max_rounds_kept;
        let mut rounds = self.lock_rounds();
        rounds.finished.retain(|kept| *kept != key);
        rounds.finished.push_back(key);
        while rounds.finished.len() > max_kept {
            let Some(oldest) = rounds.finished.pop_front() else {
                break;
            };
            rounds.slots.remove(&oldest);
            let (study_id, round_id) = oldest;
            info!(
                study = %study_id,
                round = %round_id,
                max_rounds_kept = max_kept,
                "evicted the oldest finished round from memory"
            );
        }
    }
}

/// The gRPC service over a shared [`WorkerState`].
#[derive(Clone)]
pub struct WorkerService {
    state: Arc<WorkerState>,
}

impl WorkerService {
    /// Wraps the shared state.
    pub fn new(state: Arc<WorkerState>) -> Self {
        WorkerService { state }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<ExtractEvent, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<FeatureTableChunk, Status>> + Send>>;
