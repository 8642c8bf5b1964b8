//! The store of the habitat rounds: one slot per (study id, round id) for
//! `ComputeSupervoxels` and for `ApplyHabitatModel` rounds, with the same
//! rules as the `Extract` rounds. A slot is empty while its round runs, and
//! at most `max_rounds_kept` finished habitat rounds are kept, the oldest
//! dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tracing::info;

use super::habitat::SupervoxelRound;
use super::habitat_apply::HabitatRound;
use super::{RoundKey, WorkerState};

/// A slot of one habitat round: empty while it runs, then its result.
pub(super) type Slot<T> = Arc<tokio::sync::Mutex<Option<Arc<T>>>>;

/// The habitat rounds of this process.
#[derive(Default)]
pub(super) struct HabitatStore {
    supervoxels: HashMap<RoundKey, Slot<SupervoxelRound>>,
    applied: HashMap<RoundKey, Slot<HabitatRound>>,
    /// Finished rounds of both kinds, oldest first, with `true` for a
    /// supervoxel round.
    finished: VecDeque<(bool, RoundKey)>,
}

impl WorkerState {
    fn lock_habitat(&self) -> std::sync::MutexGuard<'_, HabitatStore> {
        match self.habitat.lock() {
            Ok(store) => store,
            // Every update under this lock is a single insert, push or
            // remove, so a panic while holding it leaves the store consistent.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(super) fn supervoxel_slot(&self, key: RoundKey) -> Slot<SupervoxelRound> {
        self.lock_habitat()
            .supervoxels
            .entry(key)
            .or_default()
            .clone()
    }

    pub(super) fn habitat_slot(&self, key: RoundKey) -> Slot<HabitatRound> {
        self.lock_habitat().applied.entry(key).or_default().clone()
    }

    /// Returns a finished `ComputeSupervoxels` round.
    pub(super) fn finished_supervoxel_round(&self, key: &RoundKey) -> Option<Arc<SupervoxelRound>> {
        let slot = self.lock_habitat().supervoxels.get(key).cloned()?;
        slot.try_lock().ok().and_then(|guard| guard.clone())
    }

    /// Returns a finished `ApplyHabitatModel` round.
    pub(super) fn finished_habitat_round(&self, key: &RoundKey) -> Option<Arc<HabitatRound>> {
        let slot = self.lock_habitat().applied.get(key).cloned()?;
        slot.try_lock().ok().and_then(|guard| guard.clone())
    }

    /// Marks a habitat round as finished and drops the oldest finished
    /// habitat rounds beyond `max_rounds_kept`.
    pub(super) fn keep_finished_habitat_round(&self, supervoxel: bool, key: RoundKey) {
        let max_kept = self.config.max_rounds_kept;
        let mut store = self.lock_habitat();
        store
            .finished
            .retain(|kept| *kept != (supervoxel, key.clone()));
        store.finished.push_back((supervoxel, key));
        while store.finished.len() > max_kept {
            let Some((kind, oldest)) = store.finished.pop_front() else {
                break;
            };
            if kind {
                store.supervoxels.remove(&oldest);
            } else {
                store.applied.remove(&oldest);
            }
            info!(
                study = %oldest.0,
                round = %oldest.1,
                max_rounds_kept = max_kept,
                "evicted the oldest finished habitat round from memory"
            );
        }
    }
}
