//! What `GET /devices` shows of each lock that can change (remotelock-api.md §3.4): whether it
//! is connected and since when, its battery and its bolt; and the health controls that change
//! them and publish `connectivity`, `power_level_low` and `battery_replaced` events (§3.8).
//! Wi-Fi locks only get codes when they are connected, so an offline lock holds its syncs and
//! its events until it reconnects.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::device_sync;
use crate::events::{self, Event, EventKind, EventSource, EventStatus};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bolt {
    Locked,
    Unlocked,
}

#[derive(Debug)]
pub struct LockState {
    pub connected: bool,
    /// The last successful connection.
    pub connected_at: DateTime<Utc>,
    pub power_level: u8,
    pub bolt: Bolt,
    /// Events that happened while offline, uploaded when the lock reconnects.
    held: Vec<Event>,
}

/// What a test sees of a lock's state.
#[derive(Debug, Clone, Serialize)]
pub struct LockSnapshot {
    pub id: String,
    pub connected: bool,
    pub connected_at: DateTime<Utc>,
    pub power_level: u8,
    pub state: Bolt,
    /// Events the offline lock has not uploaded yet.
    pub held_events: usize,
}

/// Every seeded lock's state, starting as the seed has it (bolts locked).
#[derive(Debug)]
pub struct LockStates(HashMap<Uuid, LockState>);

impl LockStates {
    pub fn seeded(catalog: &Catalog) -> Self {
        Self(
            catalog
                .locks
                .iter()
                .map(|lock| {
                    let state = LockState {
                        connected: lock.connected,
                        connected_at: lock.connected_at,
                        power_level: lock.power_level,
                        bolt: Bolt::Locked,
                        held: Vec::new(),
                    };
                    (lock.id, state)
                })
                .collect(),
        )
    }

    pub fn get(&self, lock_id: Uuid) -> Option<&LockState> {
        self.0.get(&lock_id)
    }

    /// The lock is deregistered (`DELETE /devices/:id`): it is no longer in the account.
    pub fn deregister(&mut self, lock_id: Uuid) -> bool {
        self.0.remove(&lock_id).is_some()
    }

    pub fn connected(&self, lock_id: Uuid) -> bool {
        self.get(lock_id).is_some_and(|lock| lock.connected)
    }

    pub fn hold(&mut self, event: Event) {
        if let Some(lock) = self.0.get_mut(&event.lock_id) {
            lock.held.push(event);
        }
    }

    pub fn set_bolt(&mut self, lock_id: Uuid, bolt: Bolt) {
        if let Some(lock) = self.0.get_mut(&lock_id) {
            lock.bolt = bolt;
        }
    }

    pub fn snapshot(&self, lock_id: Uuid) -> Option<LockSnapshot> {
        self.get(lock_id).map(|lock| LockSnapshot {
            id: lock_id.to_string(),
            connected: lock.connected,
            connected_at: lock.connected_at,
            power_level: lock.power_level,
            state: lock.bolt,
            held_events: lock.held.len(),
        })
    }
}

/// A power level outside 0–100.
#[derive(Debug, thiserror::Error)]
#[error("a power level is 0 to 100, not {0}")]
pub struct BadPowerLevel(pub u16);

/// Test control: the lock goes offline or comes back. `None` for an unknown lock. The service
/// notices either way (`connectivity`, source `network`, `succeeded` when connected, with the
/// last connection in `connected_at`); a lock that comes back uploads what it held, then syncs
/// the codes that were waiting for it. Returns the connectivity event's id, `Some(None)` when
/// nothing changed.
pub fn set_connected(state: &AppState, lock_id: Uuid, connected: bool) -> Option<Option<Uuid>> {
    let mut directory = state.directory();
    let lock = directory.locks.0.get_mut(&lock_id)?;
    if lock.connected == connected {
        return Some(None);
    }
    lock.connected = connected;
    if connected {
        lock.connected_at = Utc::now();
    }
    let connected_at = lock.connected_at;
    let held = std::mem::take(&mut lock.held);
    let status = if connected {
        EventStatus::Succeeded
    } else {
        EventStatus::Failed
    };
    let mut event = Event::on_lock(state, lock_id, EventKind::Connectivity, status);
    event.source = EventSource::Network;
    event.connected_at = Some(connected_at);
    let id = event.id;
    events::record(state, &mut directory, event);
    for event in held {
        events::upload(state, &mut directory, event);
    }
    if connected {
        device_sync::sync_pending(state, &mut directory, lock_id);
    }
    Some(Some(id))
}

/// Test control: the lock reports its battery at `level`. A level below
/// `power_level_low_below` publishes `power_level_low` (each report); a low battery back at
/// 100 publishes `battery_replaced`. `Ok(None)` for an unknown lock; returns the ids of the
/// events published.
pub fn set_power_level(
    state: &AppState,
    lock_id: Uuid,
    level: u16,
) -> Result<Option<Vec<Uuid>>, BadPowerLevel> {
    let level = u8::try_from(level)
        .ok()
        .filter(|l| *l <= 100)
        .ok_or(BadPowerLevel(level))?;
    let mut directory = state.directory();
    let Some(lock) = directory.locks.0.get_mut(&lock_id) else {
        return Ok(None);
    };
    let threshold = state.config.power_level_low_below;
    let was_low = lock.power_level < threshold;
    lock.power_level = level;
    let mut published = Vec::new();
    if level < threshold {
        let mut event = Event::on_lock(
            state,
            lock_id,
            EventKind::PowerLevelLow,
            EventStatus::Succeeded,
        );
        event.power_level = Some(level);
        published.push(events::upload(state, &mut directory, event));
    } else if was_low && level == 100 {
        let event = Event::on_lock(
            state,
            lock_id,
            EventKind::BatteryReplaced,
            EventStatus::Succeeded,
        );
        published.push(events::upload(state, &mut directory, event));
    }
    Ok(Some(published))
}
