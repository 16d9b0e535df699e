//! Whether a PIN clashes with another live person's. The docs say nothing about the scope
//! (remotelock-api.md §3.5): the private `random_available_access_pin` hints at the account,
//! partners report "same code on multiple devices" refusals and the device-sync errors include
//! `pin_conflict`, i.e. some clashes only show once a person reaches a lock. The scope, the
//! error's shape and one-off refusals are therefore chosen per test.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDateTime;
use serde::Deserialize;
use uuid::Uuid;

use crate::directory::Directory;
use crate::errors::Violations;
use crate::pins::PinPolicy;
use crate::state::SimState;

/// Where a PIN must be unique among live (upcoming or current) persons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PinUniqueness {
    /// Account-wide, checked when a person is created or updated (the default).
    #[default]
    Account,
    /// Per lock, checked when access is granted (directly or through a location) and when an
    /// update changes the PIN of a person who already reaches locks; creating never clashes.
    DeviceAtGrant,
    /// Per lock, judged when the lock syncs (`device_sync`): create, update and grant are
    /// never refused; the lock reports `access_person_sync_failed` (`pin_conflict`) for a
    /// person whose PIN another live person already has there, and the PIN does not work
    /// on that lock.
    DeviceAtSync,
    /// Never checked.
    None,
}

/// The 422 a clash produces; the real text and attribute are unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PinConflictError {
    /// `attribute: "pin"`, `"has already been taken"` (Rails' uniqueness message; the default).
    #[default]
    PinTaken,
    /// `attribute: null`, `"PIN is already used on this device"` (wording a user saw on the
    /// real API).
    UsedOnDevice,
}

impl PinConflictError {
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            Self::PinTaken => Some("pin"),
            Self::UsedOnDevice => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::PinTaken => "has already been taken",
            Self::UsedOnDevice => "PIN is already used on this device",
        }
    }
}

/// The request stages at which a PIN can be refused as taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinCheck {
    /// `POST /access_persons` with a `pin`.
    Create,
    /// `PUT /access_persons/:id` with a `pin`.
    Update,
    /// `POST /access_persons/:id/accesses` for a person holding a PIN.
    Grant,
}

/// Clashes queued by tests: "the next N PINs at this stage are someone else's".
#[derive(Default)]
pub struct PinRefusals(Mutex<HashMap<PinCheck, u32>>);

impl PinRefusals {
    pub fn add(&self, count: u32, at: PinCheck) {
        *self.counts().entry(at).or_default() += count;
    }

    /// Uses up one queued refusal at `at`, if any.
    fn take(&self, at: PinCheck) -> bool {
        match self.counts().get_mut(&at) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<PinCheck, u32>> {
        self.0.lock().expect("PIN refusals poisoned")
    }
}

/// The request a PIN is judged for.
pub enum Stage {
    Create,
    Update { person: Uuid },
    Grant { person: Uuid, locks: Vec<Uuid> },
}

impl Stage {
    fn check(&self) -> PinCheck {
        match self {
            Self::Create => PinCheck::Create,
            Self::Update { .. } => PinCheck::Update,
            Self::Grant { .. } => PinCheck::Grant,
        }
    }

    fn person(&self) -> Option<Uuid> {
        match self {
            Self::Create => None,
            Self::Update { person } | Self::Grant { person, .. } => Some(*person),
        }
    }
}

/// Judges PINs against the directory as it is while the handler holds it.
pub struct PinGuard<'a> {
    state: &'a SimState,
    directory: &'a Directory,
    local_now: NaiveDateTime,
}

impl<'a> PinGuard<'a> {
    pub fn new(state: &'a SimState, directory: &'a Directory, local_now: NaiveDateTime) -> Self {
        Self {
            state,
            directory,
            local_now,
        }
    }

    pub fn policy(&self) -> &PinPolicy {
        &self.state.pins
    }

    /// Whether a well-formed PIN sent (or held, at grant) is refused as taken. Uses up a
    /// queued refusal for the stage even when the PIN clashes anyway.
    pub fn clashes(&self, pin: &str, stage: &Stage) -> bool {
        let refused = self.state.pin_refusals.take(stage.check());
        let catalog = &self.state.catalog;
        let (directory, now) = (self.directory, self.local_now);
        refused
            || match (self.state.config.pin_uniqueness, stage) {
                (PinUniqueness::Account, Stage::Create | Stage::Update { .. }) => {
                    directory.pin_in_use(pin, stage.person(), now)
                }
                (PinUniqueness::DeviceAtGrant, Stage::Update { person }) => {
                    let locks = directory.locks_of(catalog, *person);
                    directory.pin_on_locks(catalog, pin, &locks, *person, now)
                }
                (PinUniqueness::DeviceAtGrant, Stage::Grant { person, locks }) => {
                    directory.pin_on_locks(catalog, pin, locks, *person, now)
                }
                _ => false,
            }
    }

    /// Whether generation must skip `pin`: any live holder in the account, whatever the
    /// scope, so that a server-picked PIN never clashes.
    pub fn in_use(&self, pin: &str, stage: &Stage) -> bool {
        self.directory
            .pin_in_use(pin, stage.person(), self.local_now)
    }

    /// Adds the configured clash error.
    pub fn report_conflict(&self, violations: &mut Violations) {
        let error = self.state.config.pin_conflict_error;
        violations.add(error.attribute(), error.message());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_down_per_stage() {
        let refusals = PinRefusals::default();
        refusals.add(2, PinCheck::Grant);
        assert!(!refusals.take(PinCheck::Create));
        assert!(refusals.take(PinCheck::Grant));
        assert!(refusals.take(PinCheck::Grant));
        assert!(!refusals.take(PinCheck::Grant));
    }
}
