//! The patron's PIN email, rendered from a `pin.issued` event. A pure function, so what the
//! patron reads is tested without an SMTP server. Every time shown is wall-clock time at the
//! location, and the zone is named.

use chrono::{DateTime, NaiveDateTime, Offset, Utc};
use lockbridge_domain::{
    TimeZone,
    events::{PinIssuedData, PinReason},
};
use lockbridge_http::html::escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// "Tue 1 Dec 2026"
const DATE: &str = "%a %-d %b %Y";
/// "Tue 1 Dec": the PIN's validity sits next to the booking's full date.
const DAY: &str = "%a %-d %b";
const CLOCK: &str = "%H:%M";
/// "01:30 EDT": only when a daylight-saving change falls inside the booking.
const CLOCK_AND_ZONE: &str = "%H:%M %Z";

pub fn render(pin: &PinIssuedData) -> PinEmail {
    let facts = Facts::of(pin);
    PinEmail {
        subject: facts.subject.clone(),
        text: body(&facts, Body::Text),
        html: body(&facts.map(escape), Body::Html),
    }
}

/// What the email says, as plain text. The HTML body shows the same facts, each escaped: they
/// carry names that came from upstream, and none of them holds markup of ours.
struct Facts {
    subject: String,
    greeting: String,
    intro: String,
    pin: String,
    space: String,
    location: String,
    booking: String,
    validity: String,
    zone: String,
}

impl Facts {
    fn of(pin: &PinIssuedData) -> Self {
        let space = &pin.space_name;
        let location = &pin.location_name;
        let date = pin
            .booking_starts_at
            .with_timezone(&pin.time_zone.tz())
            .format(DATE);
        let (subject, intro) = match pin.reason {
            PinReason::New => (
                format!("Your door PIN for {space} — {date}"),
                format!(
                    "Your booking of {space} at {location} is confirmed. Here is the PIN for its door."
                ),
            ),
            PinReason::Reissued => (
                format!("Your new door PIN for {space} — {date}"),
                format!(
                    "The PIN for {space} at {location} has been replaced. The PIN we sent you \
                     before no longer works: use this one."
                ),
            ),
            PinReason::Changed => (
                format!("Updated booking: your door PIN for {space} — {date}"),
                format!(
                    "Your booking of {space} at {location} has changed. Here are its new \
                     details; earlier emails about it are out of date."
                ),
            ),
        };
        let name = pin.patron.name.trim();
        Self {
            subject,
            greeting: if name.is_empty() {
                "Hello,".to_owned()
            } else {
                format!("Hello {name},")
            },
            intro,
            pin: pin.pin.expose().to_owned(),
            space: space.clone(),
            location: location.clone(),
            booking: booking_window(pin.booking_starts_at, pin.booking_ends_at, pin.time_zone),
            validity: validity(pin.local_valid_from, pin.local_valid_until),
            zone: pin.time_zone.name().to_owned(),
        }
    }

    fn map(&self, f: impl Fn(&str) -> String) -> Self {
        Self {
            subject: f(&self.subject),
            greeting: f(&self.greeting),
            intro: f(&self.intro),
            pin: f(&self.pin),
            space: f(&self.space),
            location: f(&self.location),
            booking: f(&self.booking),
            validity: f(&self.validity),
            zone: f(&self.zone),
        }
    }
}

/// "Tue 1 Dec 2026, 14:00–15:30", with the day repeated when the booking crosses midnight.
fn booking_window(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, zone: TimeZone) -> String {
    let start = starts_at.with_timezone(&zone.tz());
    let end = ends_at.with_timezone(&zone.tz());
    // Across a daylight-saving change the clock alone misleads (01:30–02:00 that lasts 90
    // minutes), so each end names its offset.
    let clock = if start.offset().fix() == end.offset().fix() {
        CLOCK
    } else {
        CLOCK_AND_ZONE
    };
    if start.date_naive() == end.date_naive() {
        format!(
            "{}, {}–{}",
            start.format(DATE),
            start.format(clock),
            end.format(clock)
        )
    } else {
        format!(
            "{}, {} – {}, {}",
            start.format(DATE),
            start.format(clock),
            end.format(DATE),
            end.format(clock)
        )
    }
}

/// "from 13:45 on Tue 1 Dec until 15:35". These are the lock's own wall-clock times, which
/// may be wider than the booking around a repeated hour (see `PinValidity::in_zone`).
fn validity(from: NaiveDateTime, until: NaiveDateTime) -> String {
    let until = if from.date() == until.date() {
        until.format(CLOCK).to_string()
    } else {
        format!("{} on {}", until.format(CLOCK), until.format(DAY))
    };
    format!(
        "from {} on {} until {until}",
        from.format(CLOCK),
        from.format(DAY)
    )
}

enum Body {
    Text,
    /// `facts` must already be escaped.
    Html,
}

/// Both bodies from one list of facts, so each names the same ones.
fn body(facts: &Facts, kind: Body) -> String {
    let Facts {
        subject,
        greeting,
        intro,
        pin,
        space,
        location,
        booking,
        validity,
        zone,
    } = facts;
    match kind {
        Body::Text => format!(
            "{greeting}

{intro}

Your PIN: {pin}

Room:     {space}
Location: {location}
Booking:  {booking}

Your PIN works {validity}.
All times are local time at {location} ({zone}).

Enter the PIN on the keypad by the door. Please keep it to yourself.
"
        ),
        Body::Html => format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{subject}</title></head>
<body style="font-family: sans-serif; line-height: 1.5">
<p>{greeting}</p>
<p>{intro}</p>
<p style="font-size: 1.4em">Your PIN: <strong style="font-family: monospace; letter-spacing: 0.1em">{pin}</strong></p>
<table>
<tr><th align="left">Room</th><td>{space}</td></tr>
<tr><th align="left">Location</th><td>{location}</td></tr>
<tr><th align="left">Booking</th><td>{booking}</td></tr>
</table>
<p>Your PIN works {validity}.<br>All times are local time at {location} ({zone}).</p>
<p>Enter the PIN on the keypad by the door. Please keep it to yourself.</p>
</body>
</html>
"#
        ),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;
    use lockbridge_domain::{BookingId, LockId, Patron, Pin, SpaceId};

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    /// A booking 14:00–15:30 in New York on Tue 1 Dec 2026; the PIN works 13:45–15:35.
    fn pin_issued() -> PinIssuedData {
        PinIssuedData {
            booking_id: BookingId::parse("lc-1").unwrap(),
            patron: Patron {
                name: "Ada Lovelace".into(),
                email: "ada@example.edu".into(),
            },
            space_id: SpaceId::parse("sp-101").unwrap(),
            space_name: "Study Room 101".into(),
            location_name: "Main Library".into(),
            lock_id: LockId::parse("lock-1").unwrap(),
            pin: Pin::parse("482193").unwrap(),
            booking_starts_at: utc("2026-12-01T19:00:00Z"),
            booking_ends_at: utc("2026-12-01T20:30:00Z"),
            valid_from: utc("2026-12-01T18:45:00Z"),
            valid_until: utc("2026-12-01T20:35:00Z"),
            local_valid_from: local("2026-12-01T13:45"),
            local_valid_until: local("2026-12-01T15:35"),
            time_zone: "America/New_York".parse().unwrap(),
            pin_version: 1,
            reason: PinReason::New,
        }
    }

    fn assert_contains(haystack: &str, needles: &[&str]) {
        for needle in needles {
            assert!(
                haystack.contains(needle),
                "{needle:?} missing from:\n{haystack}"
            );
        }
    }

    #[test]
    fn a_new_pin_email_names_the_pin_room_place_and_local_times() {
        let email = render(&pin_issued());
        assert_eq!(
            email.subject,
            "Your door PIN for Study Room 101 — Tue 1 Dec 2026"
        );
        let facts = [
            "Hello Ada Lovelace,",
            "is confirmed",
            "482193",
            "Study Room 101",
            "Main Library",
            "Tue 1 Dec 2026, 14:00–15:30",
            "Your PIN works from 13:45 on Tue 1 Dec until 15:35.",
            "local time at Main Library (America/New_York)",
        ];
        assert_contains(&email.text, &facts);
        assert_contains(&email.html, &facts);
    }

    #[test]
    fn upstream_values_are_escaped_in_html_only() {
        let mut pin = pin_issued();
        pin.patron.name = r#"<script>alert("hi")</script>"#.into();
        pin.space_name = "R&D <Lab>".into();
        pin.location_name = "O'Brien Hall".into();
        let email = render(&pin);

        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(!email.html.contains("<Lab>"), "{}", email.html);
        assert_contains(
            &email.html,
            &[
                "Hello &lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt;,",
                "<title>Your door PIN for R&amp;D &lt;Lab&gt; — Tue 1 Dec 2026</title>",
                "<td>R&amp;D &lt;Lab&gt;</td>",
                "<td>O&#39;Brien Hall</td>",
            ],
        );
        assert_contains(
            &email.text,
            &[
                r#"<script>alert("hi")</script>"#,
                "R&D <Lab>",
                "O'Brien Hall",
            ],
        );
        assert_eq!(
            email.subject,
            "Your door PIN for R&D <Lab> — Tue 1 Dec 2026"
        );
    }

    #[test]
    fn a_booking_across_the_fall_back_hour_names_both_offsets() {
        // New York falls back at 02:00 EDT on 1 Nov 2026. 05:30Z is the first 01:30 (EDT) and
        // 07:00Z is 02:00 EST: 90 minutes. The lock's window is widened to 00:30–02:30.
        let mut pin = pin_issued();
        pin.booking_starts_at = utc("2026-11-01T05:30:00Z");
        pin.booking_ends_at = utc("2026-11-01T07:00:00Z");
        pin.local_valid_from = local("2026-11-01T00:30");
        pin.local_valid_until = local("2026-11-01T02:30");
        let email = render(&pin);
        assert_eq!(
            email.subject,
            "Your door PIN for Study Room 101 — Sun 1 Nov 2026"
        );
        assert_contains(
            &email.text,
            &[
                "Sun 1 Nov 2026, 01:30 EDT–02:00 EST",
                "Your PIN works from 00:30 on Sun 1 Nov until 02:30.",
            ],
        );
    }

    #[test]
    fn a_booking_across_the_spring_forward_hour_names_both_offsets() {
        // New York springs forward at 02:00 EST on 8 Mar 2026: 06:30Z is 01:30 EST, 07:30Z 03:30 EDT.
        let mut pin = pin_issued();
        pin.booking_starts_at = utc("2026-03-08T06:30:00Z");
        pin.booking_ends_at = utc("2026-03-08T07:30:00Z");
        pin.local_valid_from = local("2026-03-08T01:15");
        pin.local_valid_until = local("2026-03-08T03:35");
        let email = render(&pin);
        assert_contains(
            &email.text,
            &[
                "Sun 8 Mar 2026, 01:30 EST–03:30 EDT",
                "Your PIN works from 01:15 on Sun 8 Mar until 03:35.",
            ],
        );
    }

    #[test]
    fn east_of_utc_the_local_date_is_used_and_midnight_is_crossed() {
        // Tokyo is UTC+9: 14:30Z on 1 Dec is 23:30 on Tue 1 Dec; 16:00Z is 01:00 on Wed 2 Dec.
        let mut pin = pin_issued();
        pin.time_zone = "Asia/Tokyo".parse().unwrap();
        pin.booking_starts_at = utc("2026-12-01T14:30:00Z");
        pin.booking_ends_at = utc("2026-12-01T16:00:00Z");
        pin.local_valid_from = local("2026-12-01T23:15");
        pin.local_valid_until = local("2026-12-02T01:05");
        let email = render(&pin);
        assert_contains(
            &email.text,
            &[
                "Tue 1 Dec 2026, 23:30 – Wed 2 Dec 2026, 01:00",
                "Your PIN works from 23:15 on Tue 1 Dec until 01:05 on Wed 2 Dec.",
                "(Asia/Tokyo)",
            ],
        );

        // 15:10Z is already Wednesday in Tokyo: the subject says so.
        pin.booking_starts_at = utc("2026-12-01T15:10:00Z");
        assert_eq!(
            render(&pin).subject,
            "Your door PIN for Study Room 101 — Wed 2 Dec 2026"
        );
    }

    #[test]
    fn reissued_and_changed_pins_say_why_they_come() {
        let mut pin = pin_issued();
        pin.reason = PinReason::Reissued;
        pin.pin_version = 2;
        let reissued = render(&pin);
        assert_eq!(
            reissued.subject,
            "Your new door PIN for Study Room 101 — Tue 1 Dec 2026"
        );
        assert_contains(
            &reissued.text,
            &["has been replaced", "before no longer works"],
        );
        assert!(!reissued.text.contains("is confirmed"));

        pin.reason = PinReason::Changed;
        let changed = render(&pin);
        assert_eq!(
            changed.subject,
            "Updated booking: your door PIN for Study Room 101 — Tue 1 Dec 2026"
        );
        assert_contains(&changed.text, &["has changed", "out of date"]);
        assert_contains(&changed.html, &["has changed", "out of date"]);
    }

    #[test]
    fn a_patron_without_a_name_is_greeted_plainly() {
        let mut pin = pin_issued();
        pin.patron.name = "  ".into();
        assert!(render(&pin).text.starts_with("Hello,\n"));
    }
}
