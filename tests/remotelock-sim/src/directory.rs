//! The mutable part of the account: access persons and their accesses.

use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::device_sync::SyncLedger;
use crate::events::EventLog;
use crate::lock_state::LockStates;

/// Derived at read time from the window (remotelock-api.md §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    Upcoming,
    Current,
    Expired,
    Deactivated,
}

impl PersonStatus {
    /// Expired and deactivated persons carry `meta.restricted_actions: ["update"]`.
    pub fn restricts_update(self) -> bool {
        matches!(self, Self::Expired | Self::Deactivated)
    }

    /// Whether the person still holds its PIN for uniqueness purposes.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Upcoming | Self::Current)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonType {
    User,
    Guest,
}

impl PersonType {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "access_user" => Some(Self::User),
            "access_guest" => Some(Self::Guest),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "access_user",
            Self::Guest => "access_guest",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestWindow {
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub enum PersonKind {
    User { department: Option<String> },
    Guest { window: GuestWindow },
}

#[derive(Debug, Clone)]
pub struct AccessPerson {
    pub id: Uuid,
    pub kind: PersonKind,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub pin: Option<String>,
    pub card_number: Option<String>,
    pub deactivated: bool,
    /// Hard-deleted persons vanish from the API but stay visible to tests.
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AccessPerson {
    pub fn person_type(&self) -> PersonType {
        match self.kind {
            PersonKind::User { .. } => PersonType::User,
            PersonKind::Guest { .. } => PersonType::Guest,
        }
    }

    fn guest_snapshot(&self, local_now: NaiveDateTime) -> Option<GuestSnapshot> {
        let PersonKind::Guest { window } = &self.kind else {
            return None;
        };
        Some(GuestSnapshot {
            id: self.id.to_string(),
            name: self.name.clone(),
            email: self.email.clone(),
            pin: self.pin.clone(),
            starts_at: window.starts_at,
            ends_at: window.ends_at,
            status: self.status(local_now),
            created_at: self.created_at,
            deleted_at: self.deleted_at,
        })
    }

    /// `local_now` is the current wall-clock time in the account's primary zone.
    pub fn status(&self, local_now: NaiveDateTime) -> PersonStatus {
        match &self.kind {
            _ if self.deactivated => PersonStatus::Deactivated,
            PersonKind::User { .. } => PersonStatus::Current,
            PersonKind::Guest { window } if local_now < window.starts_at => PersonStatus::Upcoming,
            PersonKind::Guest { window } if local_now < window.ends_at => PersonStatus::Current,
            PersonKind::Guest { .. } => PersonStatus::Expired,
        }
    }
}

/// The two kinds of record the simulator can grant; the API knows more (`acs_door`, …) but
/// none exist in the seeded account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessibleType {
    Lock,
    Location,
}

impl AccessibleType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Location => "location",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accessible {
    pub kind: AccessibleType,
    pub id: Uuid,
}

#[derive(Debug, Clone)]
pub struct Access {
    pub id: Uuid,
    pub person_id: Uuid,
    pub accessible: Accessible,
    pub guest_start_time: Option<NaiveTime>,
    pub guest_end_time: Option<NaiveTime>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a test sees of an `access_guest`.
#[derive(Debug, Clone, Serialize)]
pub struct GuestSnapshot {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub pin: Option<String>,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub status: PersonStatus,
    pub created_at: DateTime<Utc>,
    /// Set when the guest was hard-deleted (`DELETE /access_persons/:id`).
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessSnapshot {
    pub id: String,
    pub access_person_id: String,
    pub accessible_type: String,
    pub accessible_id: String,
}

#[derive(Debug)]
pub struct Directory {
    /// In creation order, including deleted persons.
    persons: Vec<AccessPerson>,
    accesses: Vec<Access>,
    /// Whether each person's PIN reached each lock it was granted.
    pub sync: SyncLedger,
    pub events: EventLog,
    /// Connections, batteries and bolts: syncs and events depend on them.
    pub locks: LockStates,
}

impl Directory {
    /// No persons yet; the locks as seeded.
    pub fn new(catalog: &Catalog) -> Self {
        Self {
            persons: Vec::new(),
            accesses: Vec::new(),
            sync: SyncLedger::default(),
            events: EventLog::default(),
            locks: LockStates::seeded(catalog),
        }
    }

    /// Persons visible through the API, in creation order.
    pub fn persons(&self) -> impl Iterator<Item = &AccessPerson> {
        self.persons.iter().filter(|p| p.deleted_at.is_none())
    }

    pub fn person(&self, id: Uuid) -> Option<&AccessPerson> {
        self.persons().find(|p| p.id == id)
    }

    pub fn person_mut(&mut self, id: Uuid) -> Option<&mut AccessPerson> {
        self.persons
            .iter_mut()
            .find(|p| p.id == id && p.deleted_at.is_none())
    }

    pub fn add_person(&mut self, person: AccessPerson) {
        self.persons.push(person);
    }

    /// Hard delete: the person disappears from the API together with its accesses.
    pub fn delete_person(&mut self, id: Uuid, at: DateTime<Utc>) -> bool {
        let Some(person) = self.person_mut(id) else {
            return false;
        };
        person.deleted_at = Some(at);
        self.accesses.retain(|a| a.person_id != id);
        true
    }

    /// Live persons other than `except` holding `pin`.
    fn live_holders<'a>(
        &'a self,
        pin: &'a str,
        except: Option<Uuid>,
        local_now: NaiveDateTime,
    ) -> impl Iterator<Item = &'a AccessPerson> {
        self.persons().filter(move |p| {
            Some(p.id) != except && p.pin.as_deref() == Some(pin) && p.status(local_now).is_live()
        })
    }

    /// Whether a live person other than `except` holds `pin`.
    pub fn pin_in_use(&self, pin: &str, except: Option<Uuid>, local_now: NaiveDateTime) -> bool {
        self.live_holders(pin, except, local_now).next().is_some()
    }

    /// Whether a live person other than `except` holding `pin` reaches one of `locks`,
    /// directly or through a location.
    pub fn pin_on_locks(
        &self,
        catalog: &Catalog,
        pin: &str,
        locks: &[Uuid],
        except: Uuid,
        local_now: NaiveDateTime,
    ) -> bool {
        self.live_holders(pin, Some(except), local_now)
            .any(|holder| self.reaches_any(catalog, holder.id, locks))
    }

    /// Whether a live person other than `except` holding `pin` has it on `lock_id`: reaches
    /// the lock and its sync there neither failed nor is pending.
    pub fn pin_held_on_lock(
        &self,
        catalog: &Catalog,
        pin: &str,
        lock_id: Uuid,
        except: Uuid,
        local_now: NaiveDateTime,
    ) -> bool {
        self.live_holders(pin, Some(except), local_now)
            .any(|holder| {
                self.sync.on_lock(holder.id, lock_id)
                    && self.reaches_any(catalog, holder.id, &[lock_id])
            })
    }

    /// The locks a person's accesses reach.
    pub fn locks_of(&self, catalog: &Catalog, person_id: Uuid) -> Vec<Uuid> {
        self.accesses_of(person_id)
            .flat_map(|a| catalog.locks_reached(a.accessible))
            .map(|lock| lock.id)
            .collect()
    }

    fn reaches_any(&self, catalog: &Catalog, person_id: Uuid, locks: &[Uuid]) -> bool {
        self.locks_of(catalog, person_id)
            .iter()
            .any(|lock| locks.contains(lock))
    }

    pub fn accesses(&self) -> impl Iterator<Item = &Access> {
        self.accesses.iter()
    }

    pub fn accesses_of(&self, person_id: Uuid) -> impl Iterator<Item = &Access> {
        self.accesses
            .iter()
            .filter(move |a| a.person_id == person_id)
    }

    pub fn access_mut(&mut self, person_id: Uuid, access_id: Uuid) -> Option<&mut Access> {
        self.accesses
            .iter_mut()
            .find(|a| a.person_id == person_id && a.id == access_id)
    }

    pub fn add_access(&mut self, access: Access) {
        self.accesses.push(access);
    }

    /// Every access granted on the lock itself goes with it (inferred: a deregistered device
    /// can open nothing).
    pub fn revoke_accesses_to_lock(&mut self, lock_id: Uuid) {
        self.accesses.retain(|a| {
            a.accessible
                != Accessible {
                    kind: AccessibleType::Lock,
                    id: lock_id,
                }
        });
    }

    pub fn revoke_access(&mut self, person_id: Uuid, access_id: Uuid) -> bool {
        let before = self.accesses.len();
        self.accesses
            .retain(|a| !(a.person_id == person_id && a.id == access_id));
        self.accesses.len() < before
    }

    pub fn guest_snapshots(&self, local_now: NaiveDateTime) -> Vec<GuestSnapshot> {
        self.persons
            .iter()
            .filter_map(|p| p.guest_snapshot(local_now))
            .collect()
    }

    /// Guests still able to open `lock_id`: upcoming or current, with an access reaching it,
    /// their PIN not failed to sync there.
    pub fn live_guests_on_lock(
        &self,
        catalog: &Catalog,
        lock_id: Uuid,
        local_now: NaiveDateTime,
    ) -> Vec<GuestSnapshot> {
        self.persons()
            .filter(|p| {
                p.status(local_now).is_live()
                    && self.reaches_any(catalog, p.id, &[lock_id])
                    && !self.sync.failed(p.id, lock_id)
            })
            .filter_map(|p| p.guest_snapshot(local_now))
            .collect()
    }

    pub fn access_snapshots(&self) -> Vec<AccessSnapshot> {
        self.accesses
            .iter()
            .map(|a| AccessSnapshot {
                id: a.id.to_string(),
                access_person_id: a.person_id.to_string(),
                accessible_type: a.accessible.kind.as_str().to_owned(),
                accessible_id: a.accessible.id.to_string(),
            })
            .collect()
    }
}
