//! What a provisioning run must do for a booking, decided from the booking and its PIN record
//! alone, before any call: the run carries it out, and an escalation asks the same question
//! to tell staff the right thing ("no PIN" or "a cancelled booking still opens the door").

use std::time::Duration;

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingStatus, PinState, PinValidity};
use lockbridge_remotelock::Urgency;

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
    // whatever state an earlier failure left the record in. Or one the drift pass found gone
    // by hand (to make again), or active again by hand while the booking wants no PIN.
    let reopened =
        |r: &PinRecord| r.drift_found_at.is_some() && booking.status != BookingStatus::Confirmed;
    let held = record.filter(|r| {
        (r.state != PinState::Revoked || reopened(r))
            && (r.guest_id.is_some()
                || r.create_requested_at.is_some()
                || r.drift_found_at.is_some())
    });
    let ended = validity.valid_until <= now;
    match (&booking.lock, booking.status, held) {
        // A PIN whose window has passed runs out by itself (RemoteLock refuses updates to
        // expired guests). A guest whose window is still ahead — the booking was moved into
        // the past, or its guest was being made — must not keep the old times: deactivate it.
        (Some(_), BookingStatus::Confirmed, Some(held)) if ended => {
            if held.state == PinState::Issued && held.valid_until.is_some_and(|u| u <= now) {
                Plan::Nothing
            } else {
                Plan::Revoke { record: held }
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

/// How urgent the run's RemoteLock calls are: urgent when a PIN of the booking works within
/// `urgent_within`, or already does — the one it is to get, or the one its guest holds (a
/// cancelled booking's door still opens, a moved booking's old window may be open).
pub(crate) fn urgency(
    validity: &PinValidity,
    record: Option<&PinRecord>,
    urgent_within: Duration,
    now: DateTime<Utc>,
) -> Urgency {
    let held = record
        .filter(|r| r.state != PinState::Revoked)
        .and_then(|r| r.valid_from);
    let soonest = held.map_or(validity.valid_from, |held| held.min(validity.valid_from));
    let horizon = chrono::Duration::from_std(urgent_within)
        .ok()
        .and_then(|within| now.checked_add_signed(within));
    if horizon.is_none_or(|horizon| soonest <= horizon) {
        Urgency::Urgent
    } else {
        Urgency::Routine
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use lockbridge_domain::{BookingId, BookingWindow, LockId, Patron, SpaceId};

    use crate::store::StaffSettings;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 12, hour, 0, 0).unwrap()
    }

    fn booking(status: BookingStatus, linked: bool) -> Booking {
        Booking {
            booking_id: BookingId::parse("b-1").unwrap(),
            correlation_id: uuid::Uuid::nil(),
            traceparent: None,
            status,
            window: BookingWindow::new(at(14), at(15)).unwrap(),
            patron: Patron {
                name: "Ada".into(),
                email: "ada@example.edu".into(),
            },
            space_id: SpaceId::parse("sp-101").unwrap(),
            space_name: "Study Room 101".into(),
            location_name: "Main".into(),
            location_zone: "America/New_York".parse().unwrap(),
            lock: linked.then(|| LinkedLock {
                id: LockId::parse("lock-1").unwrap(),
                name: "Door".into(),
            }),
            stored_at: at(9),
            settings: StaffSettings::default(),
        }
    }

    fn record(state: PinState, guest: bool) -> PinRecord {
        PinRecord {
            state,
            space_id: Some(SpaceId::parse("sp-101").unwrap()),
            lock_id: Some(LockId::parse("lock-1").unwrap()),
            guest_name: Some("Ada · b-1".into()),
            create_requested_at: None,
            guest_id: guest.then(|| lockbridge_domain::GuestId::parse("g-1").unwrap()),
            pin_sealed: Some("c2VhbGVk".into()),
            pin_version: 1,
            valid_from: Some(at(14)),
            valid_until: Some(at(15)),
            patron_name: None,
            patron_email: None,
            reissue_requested_at: None,
            resync_requested_at: None,
            drift_found_at: None,
        }
    }

    /// The plan's name, for comparing.
    fn name(plan: &Plan<'_>) -> String {
        match plan {
            Plan::Issue { .. } => "issue".into(),
            Plan::Follow { .. } => "follow".into(),
            Plan::Revoke { .. } => "revoke".into(),
            Plan::Record { state, .. } => format!("record {}", state.as_str()),
            Plan::Nothing => "nothing".into(),
        }
    }

    #[test]
    fn each_case_gets_its_plan() {
        use BookingStatus::{Cancelled, Confirmed, Tentative};
        let validity = PinValidity {
            valid_from: at(14),
            valid_until: at(15),
        };
        let (before, after) = (at(10), at(16));
        let issued = record(PinState::Issued, true);
        // Issued for a window that is still ahead when the booking itself has ended.
        let later = PinRecord {
            valid_until: Some(at(20)),
            ..record(PinState::Issued, true)
        };
        let revoked = record(PinState::Revoked, true);
        let found = Some(at(9));
        let revoked_drifted = PinRecord {
            drift_found_at: found,
            ..record(PinState::Revoked, true)
        };
        let guest_gone = PinRecord {
            drift_found_at: found,
            ..record(PinState::Issued, false)
        };
        let drifted = PinRecord {
            drift_found_at: found,
            ..record(PinState::Issued, true)
        };
        // (case, booking, record, now, expected plan)
        type Case<'a> = (
            &'a str,
            Booking,
            Option<&'a PinRecord>,
            DateTime<Utc>,
            &'a str,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "new confirmed",
                booking(Confirmed, true),
                None,
                before,
                "issue",
            ),
            (
                "held guest",
                booking(Confirmed, true),
                Some(&issued),
                before,
                "follow",
            ),
            (
                "ended, never issued",
                booking(Confirmed, true),
                None,
                after,
                "record expired",
            ),
            (
                "ended, issued",
                booking(Confirmed, true),
                Some(&issued),
                after,
                "nothing",
            ),
            (
                "moved into the past",
                booking(Confirmed, true),
                Some(&later),
                after,
                "revoke",
            ),
            (
                "cancelled with guest",
                booking(Cancelled, true),
                Some(&issued),
                before,
                "revoke",
            ),
            (
                "tentative",
                booking(Tentative, true),
                None,
                before,
                "record not_applicable",
            ),
            (
                "no lock",
                booking(Confirmed, false),
                None,
                before,
                "record not_applicable",
            ),
            (
                "unlinked keeps guest",
                booking(Confirmed, false),
                Some(&issued),
                before,
                "nothing",
            ),
            (
                "revoked stays revoked",
                booking(Cancelled, true),
                Some(&revoked),
                before,
                "nothing",
            ),
            (
                "cancelled guest active again",
                booking(Cancelled, true),
                Some(&revoked_drifted),
                before,
                "revoke",
            ),
            (
                "guest deleted by hand",
                booking(Confirmed, true),
                Some(&guest_gone),
                before,
                "issue",
            ),
            (
                "guest changed by hand",
                booking(Confirmed, true),
                Some(&drifted),
                before,
                "follow",
            ),
        ];
        for (case, booking, record, now, expected) in cases {
            assert_eq!(
                name(&plan(&booking, record, &validity, now)),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn soon_open_or_still_opening_doors_are_urgent() {
        let within = Duration::from_secs(2 * 3600);
        // The PIN works from 14:00.
        let validity = PinValidity {
            valid_from: at(14),
            valid_until: at(15),
        };
        assert_eq!(urgency(&validity, None, within, at(10)), Urgency::Routine);
        assert_eq!(urgency(&validity, None, within, at(12)), Urgency::Urgent);
        assert_eq!(urgency(&validity, None, within, at(14)), Urgency::Urgent);
        // Moved far ahead: the guest's current window opens soon, so the move is urgent.
        let later = PinValidity {
            valid_from: at(22),
            valid_until: at(23),
        };
        let issued = record(PinState::Issued, true);
        assert_eq!(urgency(&later, None, within, at(13)), Urgency::Routine);
        assert_eq!(
            urgency(&later, Some(&issued), within, at(13)),
            Urgency::Urgent
        );
        // A revoked guest opens nothing.
        let revoked = record(PinState::Revoked, true);
        assert_eq!(
            urgency(&later, Some(&revoked), within, at(13)),
            Urgency::Routine
        );
    }
}
