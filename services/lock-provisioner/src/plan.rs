//! What a provisioning run must do for a booking, decided from the booking and its PIN record
//! alone, before any call: the run carries it out, and an escalation asks the same question
//! to tell staff the right thing ("no PIN" or "a cancelled booking still opens the door").

use chrono::{DateTime, Utc};
use lockbridge_shared::domain::{BookingStatus, PinState, PinValidity};

use crate::store::{Booking, LinkedLock, PinRecord};

pub(crate) enum Plan<'a> {
    /// Make the guest (or find the one an unanswered create made) and grant the lock.
    Issue {
        lock: &'a LinkedLock,
        resumed: Option<&'a PinRecord>,
    },
    /// The guest exists: follow a moved window, lock or patron, a reissue, or settle a record
    /// an earlier failure left unfinished.
    Follow {
        lock: &'a LinkedLock,
        record: &'a PinRecord,
    },
    /// Deactivate the guest(s): the booking no longer wants a PIN.
    Revoke { record: &'a PinRecord },
    /// Write only the state: RemoteLock has nothing to do.
    Record {
        state: PinState,
        detail: &'static str,
    },
    /// Nothing to change.
    Nothing,
}

impl Plan<'_> {
    /// Whether this run takes a working PIN away: the write that must never give up.
    pub fn revokes(&self) -> bool {
        matches!(self, Self::Revoke { .. })
    }
}

pub(crate) fn plan<'a>(
    booking: &'a Booking,
    record: Option<&'a PinRecord>,
    validity: &PinValidity,
    now: DateTime<Utc>,
) -> Plan<'a> {
    // A guest lockbridge made, or may have made (intent recorded), and has not deactivated —
    // whatever state an earlier failure left the record in.
    let held = record.filter(|r| {
        r.state != PinState::Revoked && (r.guest_id.is_some() || r.create_requested_at.is_some())
    });
    let ended = validity.valid_until <= now;
    match (&booking.lock, booking.status, held) {
        // A PIN that worked runs out by itself; RemoteLock refuses updates to expired guests.
        (Some(_), BookingStatus::Confirmed, Some(held)) if ended => {
            if held.state == PinState::Issued {
                Plan::Nothing
            } else {
                expired(record)
            }
        }
        (Some(_), BookingStatus::Confirmed, None) if ended => expired(record),
        (Some(lock), BookingStatus::Confirmed, Some(held)) if held.guest_id.is_some() => {
            Plan::Follow { lock, record: held }
        }
        (Some(lock), BookingStatus::Confirmed, resumed) => Plan::Issue { lock, resumed },
        // Unlinking the space leaves existing guests alone; a booking that moved to a space
        // without a lock does not keep the old room's door.
        (None, BookingStatus::Confirmed, Some(held))
            if held.space_id.as_ref() == Some(&booking.space_id) =>
        {
            Plan::Nothing
        }
        (_, _, Some(held)) => Plan::Revoke { record: held },
        (None, _, None) => record_once(record, PinState::NotApplicable, "the space has no lock"),
        // No job acts on a tentative booking until it is confirmed, so it is not `pending`.
        (Some(_), BookingStatus::Tentative, None) => {
            record_once(record, PinState::NotApplicable, "awaiting confirmation")
        }
        (Some(_), BookingStatus::Cancelled, None) => {
            record_once(record, PinState::NotApplicable, "the booking is cancelled")
        }
    }
}

fn expired(record: Option<&PinRecord>) -> Plan<'static> {
    record_once(
        record,
        PinState::Expired,
        "the booking ended before a PIN was needed: no PIN made, no email sent",
    )
}

/// A state is written once; a revoked PIN stays revoked whatever the booking does next.
fn record_once(record: Option<&PinRecord>, state: PinState, detail: &'static str) -> Plan<'static> {
    match record.map(|r| r.state) {
        Some(current) if current == state || current == PinState::Revoked => Plan::Nothing,
        _ => Plan::Record { state, detail },
    }
}
