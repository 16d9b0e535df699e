//! What drift is: one booking's record held against what RemoteLock has, before anything is
//! done about it. No I/O, so every case is a unit test.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDateTime, Timelike};
use lockbridge_domain::{GuestId, LockId, LockLocalWindow, Pin};
use lockbridge_remotelock::{AccessGuest, GuestStatus};
use serde::Serialize;

/// What changed in RemoteLock behind lockbridge's back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    GuestDeleted,
    /// Deactivated, or ended early (its window moved into the past): it opens nothing.
    GuestDeactivated,
    WindowChanged,
    PinChanged,
    AccessRemoved,
    /// A booking that wants no PIN has a guest that opens the door again.
    CancelledGuestActive,
    /// The booking's lock is no longer in the account: nothing lockbridge can repair.
    LockGone,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GuestDeleted => "guest_deleted",
            Self::GuestDeactivated => "guest_deactivated",
            Self::WindowChanged => "window_changed",
            Self::PinChanged => "pin_changed",
            Self::AccessRemoved => "access_removed",
            Self::CancelledGuestActive => "cancelled_guest_active",
            Self::LockGone => "lock_gone",
        }
    }

    /// Said in the booking's history and to staff; never the PIN.
    pub fn explain(self) -> &'static str {
        match self {
            Self::GuestDeleted => "the guest was deleted in RemoteLock",
            Self::GuestDeactivated => "the guest was deactivated or ended early in RemoteLock",
            Self::WindowChanged => "the guest's window was changed in RemoteLock",
            Self::PinChanged => "the guest's PIN was changed in RemoteLock",
            Self::AccessRemoved => "the guest's access to the lock was removed in RemoteLock",
            Self::CancelledGuestActive => {
                "the guest of a booking that wants no PIN is active again in RemoteLock"
            }
            Self::LockGone => "the lock is no longer in the RemoteLock account",
        }
    }

    /// The guest is gone for good (RemoteLock has no way back from deactivated): the repair
    /// makes a new one.
    pub fn guest_gone(self) -> bool {
        matches!(self, Self::GuestDeleted | Self::GuestDeactivated)
    }
}

/// What lockbridge left in RemoteLock for one booking.
pub(crate) enum Expected {
    /// The guest works on `lock` with this window and PIN (`None`: not known, not compared).
    Live {
        lock: LockId,
        window: Option<LockLocalWindow>,
        pin: Option<Pin>,
    },
    /// The guest was deactivated: the booking wants no PIN.
    Deactivated,
}

/// What RemoteLock has, read once for the whole pass.
pub(crate) struct Seen {
    pub locks: HashSet<LockId>,
    /// Only the guests of the records, by id: a deleted one is missing.
    pub guests: HashMap<GuestId, AccessGuest>,
    /// Which guest holds a grant reaching which lock.
    pub grants: HashSet<(GuestId, LockId)>,
}

/// What differs for the guest `guest`, most telling first; empty when nothing does.
pub(crate) fn compare(guest_id: &GuestId, expected: &Expected, seen: &Seen) -> Vec<DriftKind> {
    let guest = seen.guests.get(guest_id);
    let live =
        guest.is_some_and(|g| matches!(g.status, GuestStatus::Upcoming | GuestStatus::Current));
    let (lock, window, pin) = match expected {
        Expected::Deactivated if live => return vec![DriftKind::CancelledGuestActive],
        Expected::Deactivated => return Vec::new(),
        Expected::Live { lock, window, pin } => (lock, window, pin),
    };
    let Some(guest) = guest else {
        return vec![if seen.locks.contains(lock) {
            DriftKind::GuestDeleted
        } else {
            DriftKind::LockGone
        }];
    };
    if !seen.locks.contains(lock) {
        return vec![DriftKind::LockGone];
    }
    if !live {
        return vec![DriftKind::GuestDeactivated];
    }
    let mut found = Vec::new();
    if window.as_ref().is_some_and(|w| {
        whole_seconds(w.starts_at) != whole_seconds(guest.starts_at)
            || whole_seconds(w.ends_at) != whole_seconds(guest.ends_at)
    }) {
        found.push(DriftKind::WindowChanged);
    }
    if pin.is_some() && guest.pin.as_ref() != pin.as_ref() {
        found.push(DriftKind::PinChanged);
    }
    if !seen.grants.contains(&(guest_id.clone(), lock.clone())) {
        found.push(DriftKind::AccessRemoved);
    }
    found
}

/// RemoteLock keeps windows to the second.
fn whole_seconds(at: NaiveDateTime) -> NaiveDateTime {
    at.with_nanosecond(0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};

    use super::*;

    fn local(hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2027, 1, 12)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
    }

    fn guest(id: &GuestId, status: GuestStatus, pin: &str, hours: (u32, u32)) -> AccessGuest {
        AccessGuest {
            id: id.clone(),
            name: "Ada · b-1".into(),
            email: None,
            pin: Some(Pin::parse(pin).unwrap()),
            status,
            starts_at: local(hours.0),
            ends_at: local(hours.1),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn each_change_by_hand_is_named() {
        let (id, lock) = (
            GuestId::parse("g-1").unwrap(),
            LockId::parse("l-1").unwrap(),
        );
        let expected = Expected::Live {
            lock: lock.clone(),
            window: Some(LockLocalWindow {
                starts_at: local(14),
                ends_at: local(15),
                time_zone: "America/New_York".parse().unwrap(),
            }),
            pin: Some(Pin::parse("482193").unwrap()),
        };
        let seen = |guest: Option<AccessGuest>, granted: bool, lock_there: bool| Seen {
            locks: lock_there.then(|| lock.clone()).into_iter().collect(),
            guests: guest.map(|g| (g.id.clone(), g)).into_iter().collect(),
            grants: granted
                .then(|| (id.clone(), lock.clone()))
                .into_iter()
                .collect(),
        };
        let as_left = guest(&id, GuestStatus::Upcoming, "482193", (14, 15));
        use DriftKind::*;
        let cases: Vec<(&str, Seen, Vec<DriftKind>)> = vec![
            ("as left", seen(Some(as_left.clone()), true, true), vec![]),
            ("deleted", seen(None, false, true), vec![GuestDeleted]),
            (
                "deactivated",
                seen(
                    Some(guest(&id, GuestStatus::Deactivated, "482193", (14, 15))),
                    true,
                    true,
                ),
                vec![GuestDeactivated],
            ),
            (
                "window and PIN",
                seen(
                    Some(guest(&id, GuestStatus::Upcoming, "735019", (13, 15))),
                    true,
                    true,
                ),
                vec![WindowChanged, PinChanged],
            ),
            (
                "access",
                seen(Some(as_left.clone()), false, true),
                vec![AccessRemoved],
            ),
            (
                "lock gone",
                seen(Some(as_left.clone()), false, false),
                vec![LockGone],
            ),
            (
                "lock and guest gone",
                seen(None, false, false),
                vec![LockGone],
            ),
        ];
        for (case, seen, kinds) in cases {
            assert_eq!(compare(&id, &expected, &seen), kinds, "{case}");
        }
        let active = seen(Some(as_left), true, true);
        assert_eq!(
            compare(&id, &Expected::Deactivated, &active),
            [CancelledGuestActive]
        );
        let deactivated = seen(
            Some(guest(&id, GuestStatus::Deactivated, "482193", (14, 15))),
            true,
            true,
        );
        assert!(compare(&id, &Expected::Deactivated, &deactivated).is_empty());
        assert!(compare(&id, &Expected::Deactivated, &seen(None, false, true)).is_empty());
    }
}
