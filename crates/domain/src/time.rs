//! Instants are kept in UTC; RemoteLock wants wall-clock time in the lock's zone without an
//! offset (design §5), so the conversion happens here, once, with the IANA database.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};

/// An IANA time-zone name known to the bundled tz database.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(chrono_tz::Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not an IANA time zone (such as America/New_York)")]
pub struct TimeZoneError(pub String);

impl TimeZone {
    /// A zone name read back from the database. Only valid names are ever stored; UTC is a
    /// safe reading of a corrupted row.
    pub fn from_stored(name: &str) -> Self {
        name.parse().unwrap_or(Self(chrono_tz::UTC))
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The wall-clock time at `instant` in this zone.
    pub fn local(self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.0).naive_local()
    }

    /// A wall-clock time that, read in either offset of a repeated (fall-back) hour, is not
    /// after `instant`: the lock resolves the ambiguity its own way, so a PIN must not start late.
    fn local_not_after(self, instant: DateTime<Utc>) -> NaiveDateTime {
        let wall = self.local(instant);
        match self.0.from_local_datetime(&wall) {
            LocalResult::Ambiguous(first, second) if second > instant => wall - (second - first),
            _ => wall,
        }
    }

    /// A wall-clock time that, read in either offset of a repeated hour, is not before
    /// `instant`, so a PIN never ends early.
    fn local_not_before(self, instant: DateTime<Utc>) -> NaiveDateTime {
        let wall = self.local(instant);
        match self.0.from_local_datetime(&wall) {
            LocalResult::Ambiguous(first, second) if first < instant => wall + (second - first),
            _ => wall,
        }
    }
}

impl FromStr for TimeZone {
    type Err = TimeZoneError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        name.parse::<chrono_tz::Tz>()
            .map(Self)
            .map_err(|_| TimeZoneError(name.to_owned()))
    }
}

impl TryFrom<String> for TimeZone {
    type Error = TimeZoneError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl From<TimeZone> for String {
    fn from(zone: TimeZone) -> String {
        zone.name().to_owned()
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeZone({})", self.name())
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ends_at must be after starts_at")]
pub struct WindowError;

/// When the booking holds the room: two UTC instants, end strictly after start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingWindow {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl BookingWindow {
    pub fn new(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<Self, WindowError> {
        if ends_at <= starts_at {
            return Err(WindowError);
        }
        Ok(Self { starts_at, ends_at })
    }

    pub fn starts_at(&self) -> DateTime<Utc> {
        self.starts_at
    }

    pub fn ends_at(&self) -> DateTime<Utc> {
        self.ends_at
    }

    /// The PIN works from `lead_time` before the start until `grace` after the end.
    pub fn pin_validity(&self, lead_time: Duration, grace: Duration) -> PinValidity {
        let lead = chrono::Duration::from_std(lead_time).unwrap_or(chrono::Duration::MAX);
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        PinValidity {
            valid_from: self
                .starts_at
                .checked_sub_signed(lead)
                .unwrap_or(self.starts_at),
            valid_until: self
                .ends_at
                .checked_add_signed(grace)
                .unwrap_or(self.ends_at),
        }
    }
}

/// When the PIN opens the door, as UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinValidity {
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl PinValidity {
    /// The window in the lock's wall-clock time. Inside a repeated hour the window widens by
    /// that hour rather than risk a door that stays shut during the booking.
    pub fn in_zone(&self, zone: TimeZone) -> LockLocalWindow {
        LockLocalWindow {
            starts_at: zone.local_not_after(self.valid_from),
            ends_at: zone.local_not_before(self.valid_until),
            time_zone: zone,
        }
    }
}

/// The PIN's validity as the lock reads it: wall-clock times in the lock's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLocalWindow {
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub time_zone: TimeZone,
}

impl LockLocalWindow {
    /// RemoteLock's format: ISO 8601 without an offset, whole seconds.
    pub fn remotelock_starts_at(&self) -> String {
        self.starts_at.format(REMOTELOCK_LOCAL_FORMAT).to_string()
    }

    pub fn remotelock_ends_at(&self) -> String {
        self.ends_at.format(REMOTELOCK_LOCAL_FORMAT).to_string()
    }
}

pub const REMOTELOCK_LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_stored_zone_reads_back_and_a_corrupted_one_as_utc() {
        assert_eq!(TimeZone::from_stored("Europe/Paris").name(), "Europe/Paris");
        assert_eq!(TimeZone::from_stored("Mars/Olympus").name(), "UTC");
    }

    fn local_window(
        start: &str,
        end: &str,
        zone: &str,
        lead_min: u64,
        grace_min: u64,
    ) -> (String, String) {
        let window = BookingWindow::new(utc(start), utc(end)).unwrap();
        let local = window
            .pin_validity(
                Duration::from_secs(lead_min * 60),
                Duration::from_secs(grace_min * 60),
            )
            .in_zone(zone.parse().unwrap());
        (local.remotelock_starts_at(), local.remotelock_ends_at())
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert_eq!(
            "Mars/Olympus".parse::<TimeZone>(),
            Err(TimeZoneError("Mars/Olympus".into()))
        );
    }

    #[test]
    fn end_must_follow_start() {
        let t = utc("2026-12-01T14:00:00Z");
        assert_eq!(BookingWindow::new(t, t), Err(WindowError));
    }

    #[test]
    fn new_york_spring_forward() {
        // 2026-03-08 02:00 EST jumps to 03:00 EDT. A booking 01:30–03:30 local, given in UTC.
        let got = local_window(
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:30:00Z",
            "America/New_York",
            15,
            0,
        );
        assert_eq!(
            got,
            ("2026-03-08T01:15:00".into(), "2026-03-08T03:30:00".into())
        );
    }

    #[test]
    fn new_york_fall_back() {
        // 2026-11-01 02:00 EDT falls back to 01:00 EST, so 01:00–02:00 happens twice.
        // 05:30Z is the first 01:30 (EDT): read as EST it would be an hour late, so the PIN
        // starts at 00:30. 07:00Z + 30 min grace is 02:30 EST, after the repeated hour.
        let got = local_window(
            "2026-11-01T05:30:00Z",
            "2026-11-01T07:00:00Z",
            "America/New_York",
            0,
            30,
        );
        assert_eq!(
            got,
            ("2026-11-01T00:30:00".into(), "2026-11-01T02:30:00".into())
        );
        // An ordinary evening on the same day, after the change, is not touched.
        let got = local_window(
            "2026-11-01T23:00:00Z",
            "2026-11-02T00:00:00Z",
            "America/New_York",
            15,
            5,
        );
        assert_eq!(
            got,
            ("2026-11-01T17:45:00".into(), "2026-11-01T19:05:00".into())
        );
    }

    #[test]
    fn east_of_utc_both_changes() {
        // Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
        let spring = local_window(
            "2026-03-29T00:30:00Z",
            "2026-03-29T01:30:00Z",
            "Europe/Berlin",
            10,
            0,
        );
        assert_eq!(
            spring,
            ("2026-03-29T01:20:00".into(), "2026-03-29T03:30:00".into())
        );
        // 00:30Z and 01:30Z are both 02:30 on the wall: naively an empty window. It widens to
        // cover the booking whichever 02:30 the lock believes.
        let autumn = local_window(
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z",
            "Europe/Berlin",
            0,
            0,
        );
        assert_eq!(
            autumn,
            ("2026-10-25T01:30:00".into(), "2026-10-25T03:30:00".into())
        );
    }

    #[test]
    fn far_east_zone_and_lead_time_across_midnight() {
        // Asia/Tokyo (UTC+9): a 00:10 local start with a 30 minute lead starts the day before.
        let got = local_window(
            "2026-12-01T15:10:00Z",
            "2026-12-01T16:00:00Z",
            "Asia/Tokyo",
            30,
            5,
        );
        assert_eq!(
            got,
            ("2026-12-01T23:40:00".into(), "2026-12-02T01:05:00".into())
        );
    }
}
