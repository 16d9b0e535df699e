//! Someone types a PIN at a lock's keypad (remotelock-api.md §3.8). The lock opens for a PIN
//! it holds (synced there, or set up outside the API) of a person who may use it now: not
//! deactivated, and for a guest within the window, judged in the lock's own zone. It then
//! publishes `unlocked` (about the person, `method: "pin"`) and the person publishes
//! `access_person_used` (`succeeded`, about the lock). A refused PIN is reported as the docs
//! leave open (`denied_pin_events`): the lock can only name a person whose PIN it holds.
//! Per-access `guest_start_time`/`guest_end_time` and auto-lock are not modelled.

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use crate::directory::{AccessPerson, PersonStatus};
use crate::events::{self, EnteredPin, Event, EventKind, EventStatus};
use crate::lock_state::Bolt;
use crate::state::AppState;

/// How the lock reports a PIN it refuses (the docs: `access_person_used` with `status:
/// "failed"` and/or an `access_denied` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeniedPinEvents {
    /// `access_person_used` (`failed`) when the lock knows whose PIN it is (outside the
    /// person's window), else `access_denied` (the default).
    #[default]
    UsedFailed,
    /// Always `access_denied`, about the person when the lock knows it.
    AccessDenied,
    /// Both when the lock knows whose PIN it is, else `access_denied`.
    Both,
}

/// What the keypad did.
#[derive(Debug, Clone, Serialize)]
pub struct KeypadAnswer {
    pub opened: bool,
    /// Whose PIN it was, when the lock holds it.
    pub person_id: Option<String>,
    /// The events the lock published (or holds, when offline), in order.
    pub event_ids: Vec<String>,
}

/// A PIN is what a keypad can type: digits.
#[derive(Debug, thiserror::Error)]
#[error("a keypad only has digits")]
pub struct NotAKeypadPin;

/// `Ok(None)` for an unknown lock.
pub fn enter_pin(
    state: &AppState,
    lock_id: Uuid,
    pin: &str,
) -> Result<Option<KeypadAnswer>, NotAKeypadPin> {
    if pin.is_empty() || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NotAKeypadPin);
    }
    let Some(lock) = state.catalog.lock(lock_id) else {
        return Ok(None);
    };
    let zone = state
        .catalog
        .location(lock.location_id)
        .expect("seeded lock's location")
        .time_zone;
    let lock_now = Utc::now().with_timezone(&zone).naive_local();
    let mut directory = state.directory();
    // The PINs the lock holds: not deactivated (that removes them from devices), reaching the
    // lock, synced there.
    let holders: Vec<(AccessPerson, PersonStatus)> = directory
        .persons()
        .filter(|p| p.pin.as_deref() == Some(pin))
        .map(|p| (p, p.status(lock_now)))
        .filter(|(p, status)| {
            *status != PersonStatus::Deactivated
                && directory.locks_of(&state.catalog, p.id).contains(&lock_id)
                && directory.sync.on_lock(p.id, lock_id)
        })
        .map(|(p, status)| (p.clone(), status))
        .collect();
    let opener = holders
        .iter()
        .find(|(_, status)| *status == PersonStatus::Current);
    let known = opener.or(holders.first()).map(|(p, _)| p);

    let event = |kind, status| {
        let event = Event {
            pin: Some(EnteredPin(pin.to_owned())),
            ..Event::on_lock(state, lock_id, kind, status)
        };
        match known {
            Some(p) => event.about(p.id, p.person_type(), &p.name),
            None => event,
        }
    };
    let publish = if opener.is_some() {
        directory.locks.set_bolt(lock_id, Bolt::Unlocked);
        vec![
            event(EventKind::Unlocked, EventStatus::Succeeded),
            event(EventKind::AccessPersonUsed, EventStatus::Succeeded),
        ]
    } else {
        let used = event(EventKind::AccessPersonUsed, EventStatus::Failed);
        let denied = event(EventKind::AccessDenied, EventStatus::Failed);
        match (state.config.denied_pin_events, known) {
            (_, None) | (DeniedPinEvents::AccessDenied, _) => vec![denied],
            (DeniedPinEvents::UsedFailed, Some(_)) => vec![used],
            (DeniedPinEvents::Both, Some(_)) => vec![used, denied],
        }
    };
    let event_ids = publish
        .into_iter()
        .map(|e| events::upload(state, &mut directory, e).to_string())
        .collect();
    Ok(Some(KeypadAnswer {
        opened: opener.is_some(),
        person_id: known.map(|p| p.id.to_string()),
        event_ids,
    }))
}
