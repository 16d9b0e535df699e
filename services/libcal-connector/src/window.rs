//! The days a poll reads: from yesterday to `lookahead_days` ahead, in the instance's own
//! days, cut into calls LibCal accepts (`days` at most 365 per call [T]).

use chrono::{DateTime, Days, NaiveDate, Utc};
use lockbridge_domain::TimeZone;

/// The most days forward one `/space/bookings` call reaches beyond its `date`.
const MAX_DAYS_PER_CALL: u32 = 365;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: NaiveDate,
    pub today: NaiveDate,
    pub last: NaiveDate,
}

/// One call's `date` and `days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub date: NaiveDate,
    pub days: u32,
}

impl Window {
    pub fn at(now: DateTime<Utc>, zone: TimeZone, lookahead_days: u32) -> Self {
        let today = now.with_timezone(&zone.tz()).date_naive();
        Self {
            first: today - Days::new(1),
            today,
            last: today + Days::new(lookahead_days.into()),
        }
    }

    /// Whether a poll that succeeded should have returned a booking starting on `day`.
    ///
    /// Yesterday is read, since a booking may run past midnight, but not counted on: LibCal
    /// may ignore a `date` in the past (UCL's documentation says so [T]; others rely on it).
    pub fn expects(&self, day: NaiveDate) -> bool {
        (self.today..=self.last).contains(&day)
    }

    pub fn spans(&self) -> Vec<Span> {
        let mut spans = Vec::new();
        let mut date = self.first;
        while date <= self.last {
            let remaining = (self.last - date).num_days() as u32;
            let days = remaining.min(MAX_DAYS_PER_CALL);
            spans.push(Span { date, days });
            date = date + Days::new(u64::from(days) + 1);
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        name.parse().unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn today_is_the_instance_s_day_not_utc_s() {
        // 03:00 UTC on 2 December is still 1 December in New York.
        let now = "2026-12-02T03:00:00Z".parse().unwrap();
        let window = Window::at(now, zone("America/New_York"), 30);
        assert_eq!(window.today, day("2026-12-01"));
        assert_eq!(window.first, day("2026-11-30"));
        assert_eq!(window.last, day("2026-12-31"));
        let tokyo = Window::at(now, zone("Asia/Tokyo"), 30);
        assert_eq!(tokyo.today, day("2026-12-02"));
    }

    #[test]
    fn a_month_is_one_call_and_a_long_window_is_cut_within_the_limit() {
        let now = "2026-12-02T12:00:00Z".parse().unwrap();
        let month = Window::at(now, zone("UTC"), 30);
        assert_eq!(
            month.spans(),
            vec![Span {
                date: day("2026-12-01"),
                days: 31
            }]
        );
        let year = Window::at(now, zone("UTC"), 366);
        let spans = year.spans();
        assert_eq!(
            spans,
            vec![
                Span {
                    date: day("2026-12-01"),
                    days: 365
                },
                Span {
                    date: day("2027-12-02"),
                    days: 1
                },
            ]
        );
        assert!(spans.iter().all(|s| s.days <= MAX_DAYS_PER_CALL));
    }

    #[test]
    fn yesterday_is_read_but_not_expected() {
        let now = "2026-12-02T12:00:00Z".parse().unwrap();
        let window = Window::at(now, zone("UTC"), 2);
        assert!(!window.expects(day("2026-12-01")));
        assert!(window.expects(day("2026-12-02")));
        assert!(window.expects(day("2026-12-04")));
        assert!(!window.expects(day("2026-12-05")));
    }
}
