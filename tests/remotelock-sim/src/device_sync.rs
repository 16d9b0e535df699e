//! Whether a person's PIN reached each lock it was granted (remotelock-api.md §3.5, §3.6,
//! §3.8). Codes reach a lock when it next syncs, after the API call succeeded; the lock then
//! reports `access_person_synced` or `access_person_sync_failed` (private sync errors include
//! `pin_conflict` and `timeout`). Here a connected lock syncs `sync_delay` after a grant or a
//! PIN change (at once by default); the offline lock never wakes up, so it stays pending.
//! Only with [`PinUniqueness::DeviceAtSync`] does a sync fail on its own, when another live
//! person already has the same PIN on the lock; tests can make any sync fail.

use std::collections::HashMap;

use chrono::Utc;
use uuid::Uuid;

use crate::directory::Directory;
use crate::events::{Event, EventKind};
use crate::pin_conflicts::PinUniqueness;
use crate::state::{AppState, SimState};

/// A person's PIN on one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// Waiting for the lock; `ticket` tells a delayed sync whether it was superseded.
    Pending {
        ticket: u64,
    },
    Synced,
    Failed {
        status_info: String,
    },
}

/// Sync states by (person, lock). A person with no record on a lock it reaches was put
/// there outside the API (`add_access_user`) and counts as synced where the lock is online.
#[derive(Debug, Default)]
pub struct SyncLedger {
    states: HashMap<(Uuid, Uuid), SyncState>,
    next_ticket: u64,
}

impl SyncLedger {
    pub fn state(&self, person: Uuid, lock: Uuid) -> Option<&SyncState> {
        self.states.get(&(person, lock))
    }

    pub fn failed(&self, person: Uuid, lock: Uuid) -> bool {
        matches!(self.state(person, lock), Some(SyncState::Failed { .. }))
    }

    /// Whether the lock holds the person's PIN (given that the person reaches it).
    pub fn on_lock(&self, person: Uuid, lock: Uuid) -> bool {
        matches!(self.state(person, lock), None | Some(SyncState::Synced))
    }

    fn pend(&mut self, person: Uuid, lock: Uuid) -> u64 {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.states
            .insert((person, lock), SyncState::Pending { ticket });
        ticket
    }

    fn settle(&mut self, person: Uuid, lock: Uuid, state: SyncState) {
        self.states.insert((person, lock), state);
    }
}

/// The locks a new access to `locks` must sync: all but those the person already reaches and
/// has synced through another access.
pub fn needing_sync(
    directory: &Directory,
    state: &SimState,
    person: Uuid,
    locks: &[Uuid],
) -> Vec<Uuid> {
    let reached = directory.locks_of(&state.catalog, person);
    let mut needing: Vec<Uuid> = locks
        .iter()
        .copied()
        .filter(|lock| {
            !(reached.contains(lock)
                && directory.sync.state(person, *lock) == Some(&SyncState::Synced))
        })
        .collect();
    needing.sort();
    needing.dedup();
    needing
}

/// Makes `locks` sync `person` (after a grant, or a PIN change): connected locks at once, or
/// after `sync_delay`, with the directory as it is then.
pub fn sync(state: &AppState, directory: &mut Directory, person: Uuid, locks: &[Uuid]) {
    let delay = state.config.sync_delay;
    for &lock_id in locks {
        let Some(lock) = state.catalog.lock(lock_id) else {
            continue;
        };
        let ticket = directory.sync.pend(person, lock_id);
        if !lock.connected {
            continue;
        }
        if delay.is_zero() {
            settle(state, directory, person, lock_id, ticket);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = state.shutdown.cancelled() => return,
            }
            let mut directory = state.directory();
            settle(&state, &mut directory, person, lock_id, ticket);
        });
    }
}

/// The lock's answer, unless a later change superseded this sync or the access is gone.
fn settle(
    state: &SimState,
    directory: &mut Directory,
    person_id: Uuid,
    lock_id: Uuid,
    ticket: u64,
) {
    if directory.sync.state(person_id, lock_id) != Some(&SyncState::Pending { ticket }) {
        return;
    }
    let catalog = &state.catalog;
    let Some(person) = directory.person(person_id) else {
        return;
    };
    if !directory.locks_of(catalog, person_id).contains(&lock_id) {
        return;
    }
    let conflict = state.config.pin_uniqueness == PinUniqueness::DeviceAtSync
        && person.pin.as_deref().is_some_and(|pin| {
            directory.pin_held_on_lock(catalog, pin, lock_id, person_id, state.local_now())
        });
    let outcome = if conflict {
        SyncState::Failed {
            status_info: "pin_conflict".to_owned(),
        }
    } else {
        SyncState::Synced
    };
    record(state, directory, person_id, lock_id, outcome);
}

/// Stores the outcome and the event the lock publishes for it; returns the event's id.
fn record(
    state: &SimState,
    directory: &mut Directory,
    person_id: Uuid,
    lock_id: Uuid,
    outcome: SyncState,
) -> Uuid {
    let person = directory.person(person_id).expect("checked by the caller");
    let lock = state.catalog.lock(lock_id).expect("checked by the caller");
    let time_zone = state
        .catalog
        .location(lock.location_id)
        .expect("seeded lock's location")
        .time_zone;
    let (kind, status_info) = match &outcome {
        SyncState::Failed { status_info } => {
            (EventKind::AccessPersonSyncFailed, Some(status_info.clone()))
        }
        _ => (EventKind::AccessPersonSynced, None),
    };
    let id = Uuid::new_v4();
    let event = Event {
        id,
        kind,
        status_info,
        lock_id,
        time_zone,
        person_id,
        person_type: person.person_type(),
        person_name: person.name.clone(),
        occurred_at: Utc::now(),
    };
    directory.sync.settle(person_id, lock_id, outcome);
    directory.events.record(event);
    id
}

impl SimState {
    /// Test control: the lock reports that `person`'s PIN failed to sync (`status_info`, e.g.
    /// `timeout`), so it does not work there. `None` when the person (not deleted) does not
    /// reach the lock. Returns the event's id.
    pub fn report_sync_failure(&self, person: Uuid, lock: Uuid, status_info: &str) -> Option<Uuid> {
        let mut directory = self.directory();
        directory.person(person)?;
        if !directory.locks_of(&self.catalog, person).contains(&lock) {
            return None;
        }
        let failure = SyncState::Failed {
            status_info: status_info.to_owned(),
        };
        Some(record(self, &mut directory, person, lock, failure))
    }
}
