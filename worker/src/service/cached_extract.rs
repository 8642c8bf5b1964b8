//! One patient and sequence of an `Extract` round through the result
//! cache: look the entry up, or extract and store it.

use tracing::debug;

use super::WorkerState;
use super::habitat_extract::habitat_fingerprint;
use super::rounds::{ValidatedExtract, extract_job};
use crate::cache::{CacheUse, KeyInputs, Lookup, SequenceOutcome, StoreError, is_cacheable};
use crate::extract::ExtractContext;
use crate::manifest::SequenceFiles;

/// The outcome of one job and how it used the cache.
pub(super) struct CachedExtraction {
    pub(super) outcome: SequenceOutcome,
    pub(super) used: CacheUse,
    /// The error that kept the computed outcome from being stored.
    pub(super) store_error: Option<StoreError>,
}

impl CachedExtraction {
    /// Wraps an outcome computed without the cache.
    pub(super) fn bypassed(outcome: SequenceOutcome) -> Self {
        CachedExtraction {
            outcome,
            used: CacheUse::Bypassed,
            store_error: None,
        }
    }
}

/// Returns the cached outcome of one patient and sequence, or extracts it
/// and stores it. Outcomes that [`is_cacheable`] rejects are computed every
/// time. Blocks on file I/O and extraction.
pub(super) fn extract_with_cache(
    state: &WorkerState,
    sequence: &str,
    pseudonym: &str,
    files: &SequenceFiles,
    patient_files: &[(String, SequenceFiles)],
    request: &ValidatedExtract,
) -> CachedExtraction {
    let habitat = request
        .habitat
        .as_ref()
        .map(|habitat| habitat_fingerprint(habitat, pseudonym, sequence));
    let tolerance = request
        .features
        .geometry_tolerance(&state.config.geometry_tolerance);
    let inputs = KeyInputs {
        key_identity: &state.key_identity,
        pseudonym,
        sequence,
        features: &request.features,
        tolerance: &tolerance,
        perturbation: request.perturbation.as_ref(),
        regions: &request.regions,
        habitat: habitat.as_ref().map(|digest| digest.as_slice()),
        // NOTE: the perturbed copies of a `joint` habitat round also read the
        // patient's other sequences. Their files are not in the key, so only
        // the region masks in the habitat fingerprint reflect a change to them.
        files,
    };
    let key = match state.cache.key(&inputs, &state.canonical_root) {
        Ok(key) => Some(key),
        Err(error) => {
            // The extraction below reports a missing or misplaced file as
            // the patient's exclusion.
            debug!(%error, "result cache not used for this patient and sequence");
            None
        }
    };
    let mut used = CacheUse::Bypassed;
    if let Some(key) = &key {
        used = match state.cache.lookup(key, pseudonym, sequence) {
            Lookup::Hit(outcome) => {
                return CachedExtraction {
                    outcome,
                    used: CacheUse::Hit,
                    store_error: None,
                };
            }
            Lookup::Miss => CacheUse::Miss,
            Lookup::Invalid => CacheUse::Invalid,
        };
    }

    let context = ExtractContext {
        canonical_root: &state.canonical_root,
        features: &request.features,
        tolerance: &tolerance,
    };
    let outcome = extract_job(sequence, pseudonym, files, patient_files, &context, request);
    let store_error = match &key {
        Some(key) if is_cacheable(&outcome) => {
            state.cache.store(key, pseudonym, sequence, &outcome).err()
        }
        _ => None,
    };
    CachedExtraction {
        outcome,
        used,
        store_error,
    }
}
