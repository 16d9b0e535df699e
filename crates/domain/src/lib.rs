//! The contracts between the services: the domain types they all speak of, and the events
//! they send each other on RabbitMQ. Each type carries its meaning, so a booking id cannot be
//! passed where a lock id is expected, and a PIN never shows up in a log. Nothing here does
//! I/O.

pub mod events;
mod ids;
mod pin;
mod time;
mod trace;

pub use ids::{AccessId, BookingId, CategoryId, GuestId, IdError, LocationId, LockId, SpaceId};
pub use pin::{Pin, PinError};
pub use time::{BookingWindow, LockLocalWindow, PinValidity, TimeZone, TimeZoneError, WindowError};
pub use trace::{TraceParent, TraceParentError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a space is, as the booking system sees it. Only whole-bookable spaces get a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "space_kind", rename_all = "snake_case")]
pub enum SpaceKind {
    BookableAsWhole,
    Container,
    Seat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "booking_status", rename_all = "snake_case")]
pub enum BookingStatus {
    /// Awaiting verification or mediation: no PIN yet.
    Tentative,
    Confirmed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "pin_state", rename_all = "snake_case")]
pub enum PinState {
    NotApplicable,
    Pending,
    Issued,
    /// Issued, and the lock confirmed it holds the PIN: shown by the APIs, derived from the
    /// PIN record (`synced_at` after the PIN was last sent), never stored.
    Synced,
    Failed,
    Revoked,
    /// The booking ended before a PIN was needed: nothing was made or sent.
    Expired,
}

impl PinState {
    /// The state of a booking the provisioner has not seen yet: only a confirmed booking of a
    /// linked space is `pending`, since only then will a job act on it.
    pub fn before_provisioning(linked: bool, status: BookingStatus) -> Self {
        match (linked, status) {
            (true, BookingStatus::Confirmed) => Self::Pending,
            _ => Self::NotApplicable,
        }
    }

    /// A lock's confirmation stamped this much before the PIN was sent still counts for it:
    /// RemoteLock's clock and ours are not the same.
    pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(5);

    /// The state as the APIs show it: an issued PIN the lock confirmed since it was last sent
    /// is `synced`.
    pub fn shown(
        self,
        synced_at: Option<DateTime<Utc>>,
        pin_sent_at: Option<DateTime<Utc>>,
    ) -> Self {
        let confirmed = match (synced_at, pin_sent_at) {
            (Some(synced), Some(sent)) => synced >= sent - Self::CLOCK_SKEW,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if self == Self::Issued && confirmed {
            Self::Synced
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotApplicable => "not_applicable",
            Self::Pending => "pending",
            Self::Issued => "issued",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// The patron's contact details as the booking system sent them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patron {
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for Patron {
    // Personal data stays out of logs; the name's first letter is enough to tell two apart.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patron").finish_non_exhaustive()
    }
}
