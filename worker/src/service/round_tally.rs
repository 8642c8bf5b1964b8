//! The running totals of an `Extract` round: finished jobs, taken in plan
//! order, become patient events, feature-table rows and perturbed copies.

use std::collections::BTreeMap;

use radstudy_proto::v1::{FeatureRow, PatientError, PatientResult};
use tracing::warn;

use super::PatientCopies;
use super::cached_extract::CachedExtraction;
use crate::cache::CacheCounts;
use crate::metrics::WorkerMetrics;

/// A finished job of a round.
pub(super) struct FinishedJob {
    pub(super) pseudonym: String,
    pub(super) label: bool,
    pub(super) sequence: String,
    pub(super) extraction: CachedExtraction,
}

/// The totals of a round so far.
pub(super) struct RoundTally {
    total: u32,
    perturbed: bool,
    /// One event per added job, in the order added.
    pub(super) events: Vec<PatientResult>,
    pub(super) rows: Vec<FeatureRow>,
    /// Copies per (sequence, region).
    pub(super) copies: BTreeMap<(String, String), Vec<PatientCopies>>,
    /// Patient-sequence pairs whose original extracted but whose copies
    /// failed.
    pub(super) n_copies_excluded: u32,
    pub(super) cache: CacheCounts,
}

impl RoundTally {
    /// Starts the tally of a round with `total` jobs.
    pub(super) fn new(total: u32, perturbed: bool) -> Self {
        RoundTally {
            total,
            perturbed,
            events: Vec::with_capacity(total as usize),
            rows: Vec::new(),
            copies: BTreeMap::new(),
            n_copies_excluded: 0,
            cache: CacheCounts::default(),
        }
    }

    /// Adds a finished job, counts it in `metrics`, and returns its event,
    /// whose index is its 1-based position among the added jobs.
    pub(super) fn add(&mut self, metrics: &WorkerMetrics, job: FinishedJob) -> PatientResult {
        let FinishedJob {
            pseudonym,
            label,
            sequence,
            extraction,
        } = job;
        let CachedExtraction {
            outcome,
            used,
            store_error,
        } = extraction;
        metrics.record_patient(
            &sequence,
            outcome
                .features
                .as_ref()
                .err()
                .map(|exclusion| exclusion.kind),
            self.perturbed,
        );
        metrics.record_cache_use(used);
        self.cache.add(used);
        if let Some(error) = store_error {
            metrics.record_cache_store_failure();
            self.cache.store_failed += 1;
            // One line per round, so that an unwritable cache directory does
            // not log every patient.
            if self.cache.store_failed == 1 {
                warn!(%error, "cannot write to the result cache; the round goes on without storing its results, and the count is in `round finished`");
            }
        }

        let mut any_copy_failed = false;
        for (region, result) in outcome.copies.into_iter().flatten() {
            match result {
                Ok(values) => self
                    .copies
                    .entry((sequence.clone(), region))
                    .or_default()
                    .push(PatientCopies {
                        pseudonym: pseudonym.clone(),
                        values,
                    }),
                Err(_) => any_copy_failed = true,
            }
        }
        if any_copy_failed {
            self.n_copies_excluded += 1;
        }

        let error = match outcome.features {
            Ok(regions) => {
                for (region, values) in regions {
                    self.rows.push(FeatureRow {
                        pseudonym: pseudonym.clone(),
                        label: label as u32,
                        sequence: sequence.clone(),
                        region,
                        values,
                    });
                }
                None
            }
            Err(exclusion) => Some(PatientError {
                pseudonym: pseudonym.clone(),
                sequence: sequence.clone(),
                kind: exclusion.kind.to_proto() as i32,
                field: exclusion.field,
                reason: exclusion.reason,
            }),
        };
        let event = PatientResult {
            pseudonym,
            sequence,
            index: self.events.len() as u32 + 1,
            total: self.total,
            error,
            region_exclusions: outcome.region_exclusions,
        };
        self.events.push(event.clone());
        event
    }
}
