//! Guest windows are wall-clock times in the lock's zone, sent and shown without an offset
//! (remotelock-api.md §3.5), e.g. `"2026-12-01T13:45:00"`.

use chrono::{DateTime, NaiveDateTime, NaiveTime, SubsecRound};

#[derive(Debug, PartialEq, Eq)]
pub enum WallClockError {
    Invalid,
    /// Documented only by omission; refusing offsets is our choice (README).
    HasOffset,
}

impl WallClockError {
    pub fn message(&self) -> &'static str {
        match self {
            Self::Invalid => "is invalid",
            Self::HasOffset => "must be a local time without a UTC offset",
        }
    }
}

pub fn parse(raw: &str) -> Result<NaiveDateTime, WallClockError> {
    let raw = raw.trim();
    // The real API stored "…T00:00:00Z" as "…T00:00:00": the `Z` is dropped, not converted.
    let local = raw.strip_suffix(['Z', 'z']).unwrap_or(raw);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(local, format).ok())
        .map(|t| t.trunc_subsecs(0))
        .ok_or_else(|| {
            if DateTime::parse_from_rfc3339(raw).is_ok()
                || DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M%:z").is_ok()
            {
                WallClockError::HasOffset
            } else {
                WallClockError::Invalid
            }
        })
}

pub fn format(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `guest_start_time`/`guest_end_time` on accesses: `"HH:MM"` in, `"HH:MM:SS"` out.
pub fn parse_time_of_day(raw: &str) -> Option<NaiveTime> {
    ["%H:%M", "%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveTime::parse_from_str(raw.trim(), format).ok())
}

pub fn format_time_of_day(at: NaiveTime) -> String {
    at.format("%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_times_and_drops_z() {
        assert_eq!(
            format(parse("2026-12-01T13:45:00").unwrap()),
            "2026-12-01T13:45:00"
        );
        assert_eq!(
            format(parse("2026-12-01T13:45:00Z").unwrap()),
            "2026-12-01T13:45:00"
        );
        assert_eq!(
            format(parse("2026-12-01T13:45").unwrap()),
            "2026-12-01T13:45:00"
        );
        assert_eq!(
            format(parse("2026-12-01T13:45:07.250").unwrap()),
            "2026-12-01T13:45:07"
        );
    }

    #[test]
    fn refuses_offsets_and_garbage() {
        assert_eq!(
            parse("2026-12-01T13:45:00-05:00"),
            Err(WallClockError::HasOffset)
        );
        assert_eq!(
            parse("2026-12-01T13:45+01:00"),
            Err(WallClockError::HasOffset)
        );
        assert_eq!(parse("tomorrow"), Err(WallClockError::Invalid));
        assert_eq!(parse("2026-12-01"), Err(WallClockError::Invalid));
    }

    #[test]
    fn time_of_day_round_trip() {
        assert_eq!(
            format_time_of_day(parse_time_of_day("08:30").unwrap()),
            "08:30:00"
        );
        assert!(parse_time_of_day("25:00").is_none());
    }
}
