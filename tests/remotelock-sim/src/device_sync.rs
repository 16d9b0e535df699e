//! Whether a person's PIN reached each lock it was granted (remotelock-api.md §3.5, §3.6,
//! §3.8). Codes reach a lock when it next syncs, after the API call succeeded; the lock then
//! reports `access_person_synced` or `access_person_sync_failed` (private sync errors include
//! `pin_conflict` and `timeout`). Here a connected lock syncs `sync_delay` after a grant or a
//! PIN change (at once by default); an offline lock syncs what is pending when it reconnects
//! (`lock_state`). Only with [`PinUniqueness::DeviceAtSync`] does a sync fail on its own, when
//! another live person already has the same PIN on the lock; tests can make any sync fail,
//! now ([`report_sync_failure`]) or the next time it happens ([`SyncLedger::fail_next`]).

use std::collections::HashMap;

use uuid::Uuid;

use crate::directory::Directory;
use crate::events::{self, Event, EventKind, EventStatus};
use crate::pin_conflicts::PinUniqueness;
use crate::state::AppState;

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
    /// Syncs tests want to fail the next time they happen, in the order they asked.
    forced: Vec<ForcedFailure>,
}

/// "The next sync on `lock` (of `person`, or of anyone) fails with `status_info`."
#[derive(Debug)]
struct ForcedFailure {
    lock: Uuid,
    person: Option<Uuid>,
    status_info: String,
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

    /// The next sync on `lock` (of `person` only, when given) fails with `status_info`.
    pub fn fail_next(&mut self, lock: Uuid, person: Option<Uuid>, status_info: &str) {
        self.forced.push(ForcedFailure {
            lock,
            person,
            status_info: status_info.to_owned(),
        });
    }

    fn take_forced(&mut self, person: Uuid, lock: Uuid) -> Option<String> {
        let at = self
            .forced
            .iter()
            .position(|f| f.lock == lock && f.person.is_none_or(|p| p == person))?;
        Some(self.forced.remove(at).status_info)
    }

    /// `(person, ticket)` of the syncs waiting for `lock`.
    fn pending_on(&self, lock: Uuid) -> Vec<(Uuid, u64)> {
        let mut pending: Vec<(Uuid, u64)> = self
            .states
            .iter()
            .filter_map(|(&(person, on), state)| match state {
                SyncState::Pending { ticket } if on == lock => Some((person, *ticket)),
                _ => None,
            })
            .collect();
        pending.sort_by_key(|&(_, ticket)| ticket);
        pending
    }
}

/// The locks a new access to `locks` must sync: all but those the person already reaches and
/// has synced through another access.
pub fn needing_sync(
    directory: &Directory,
    state: &AppState,
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
        if state.catalog.lock(lock_id).is_none() {
            continue;
        }
        let ticket = directory.sync.pend(person, lock_id);
        if !directory.locks.connected(lock_id) {
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

/// A lock that reconnected syncs everything that waited for it, in the order it was asked.
pub fn sync_pending(state: &AppState, directory: &mut Directory, lock_id: Uuid) {
    for (person, ticket) in directory.sync.pending_on(lock_id) {
        settle(state, directory, person, lock_id, ticket);
    }
}

/// The lock's answer, unless a later change superseded this sync or the access is gone.
fn settle(
    state: &AppState,
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
    let forced = directory.sync.take_forced(person_id, lock_id);
    let outcome = match forced {
        Some(status_info) => SyncState::Failed { status_info },
        None if conflict => SyncState::Failed {
            status_info: "pin_conflict".to_owned(),
        },
        None => SyncState::Synced,
    };
    record(state, directory, person_id, lock_id, outcome);
}

/// Stores the outcome and the event the lock publishes for it; returns the event's id.
fn record(
    state: &AppState,
    directory: &mut Directory,
    person_id: Uuid,
    lock_id: Uuid,
    outcome: SyncState,
) -> Uuid {
    let person = directory.person(person_id).expect("checked by the caller");
    let (kind, status, status_info) = match &outcome {
        SyncState::Failed { status_info } => (
            EventKind::AccessPersonSyncFailed,
            EventStatus::Failed,
            Some(status_info.clone()),
        ),
        _ => (EventKind::AccessPersonSynced, EventStatus::Succeeded, None),
    };
    let mut event = Event::on_lock(state, lock_id, kind, status).about(
        person_id,
        person.person_type(),
        &person.name,
    );
    event.status_info = status_info;
    directory.sync.settle(person_id, lock_id, outcome);
    events::upload(state, directory, event)
}

/// Test control: the lock reports that `person`'s PIN failed to sync (`status_info`, e.g.
/// `timeout`), so it does not work there. `None` when the person (not deleted) does not
/// reach the lock. Returns the event's id.
pub fn report_sync_failure(
    state: &AppState,
    person: Uuid,
    lock: Uuid,
    status_info: &str,
) -> Option<Uuid> {
    let mut directory = state.directory();
    directory.person(person)?;
    if !directory.locks_of(&state.catalog, person).contains(&lock) {
        return None;
    }
    let failure = SyncState::Failed {
        status_info: status_info.to_owned(),
    };
    Some(record(state, &mut directory, person, lock, failure))
}

/// Test control: the next sync on `lock` (of `person`, when given) fails with `status_info`
/// (e.g. `pin_conflict`, `timeout`) instead of whatever the lock would have said. `false`
/// when the lock, or the person, does not exist.
pub fn fail_next_sync(
    state: &AppState,
    lock: Uuid,
    person: Option<Uuid>,
    status_info: &str,
) -> bool {
    let mut directory = state.directory();
    if state.catalog.lock(lock).is_none() || person.is_some_and(|p| directory.person(p).is_none()) {
        return false;
    }
    directory.sync.fail_next(lock, person, status_info);
    true
}
