//! The staff alert for one failure that needs a person, rendered from what the failure and its
//! booking say. A pure function, like the patron's email. It names the booking and the door
//! and says what to do; it never shows a PIN (nothing it is given holds one).

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingId, TimeZone};
use lockbridge_http::html::escape;
use lockbridge_work::failures::FailureKind;

/// What an alert is rendered from.
pub struct Alert {
    pub failure_id: i64,
    pub kind: FailureKind,
    /// Written by the service that reported the failure: what failed and why.
    pub reason: String,
    pub since: DateTime<Utc>,
    pub attempts: i32,
    /// `None` for a fault of the whole system (the authorization, the SMTP relay).
    pub booking_id: Option<BookingId>,
    /// `None` too when the booking is not (or no longer) stored.
    pub booking: Option<BookedSpace>,
}

/// The booking as staff find it: which door, where, when.
pub struct BookedSpace {
    pub cancelled: bool,
    /// For a PIN that could not be revoked, the space whose door it still opens.
    pub space_name: String,
    pub location_name: String,
    pub starts_at: DateTime<Utc>,
    pub time_zone: TimeZone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// "Tue 12 Jan 14:00"
const START: &str = "%a %-d %b %H:%M";

pub fn render(alert: &Alert) -> AlertEmail {
    let content = Content::of(alert);
    AlertEmail {
        text: content.text(),
        html: content.html(),
        subject: content.subject,
    }
}

/// What the alert says; both bodies show the same lines.
struct Content {
    subject: String,
    headline: String,
    facts: Vec<(&'static str, String)>,
    todo: String,
}

impl Content {
    fn of(alert: &Alert) -> Self {
        let id = alert.failure_id;
        let retry = format!("POST /api/v1/failures/{id}/retry in the admin API");
        let booking_id = alert.booking_id.as_ref().map_or("", BookingId::as_str);
        let space = alert
            .booking
            .as_ref()
            .map_or("its door", |b| b.space_name.as_str());
        // "(Study Room 101, Tue 12 Jan 14:00)", or nothing when the booking is not known.
        let when = alert.booking.as_ref().map_or_else(String::new, |b| {
            let start = b.starts_at.with_timezone(&b.time_zone.tz()).format(START);
            format!(" ({}, {start})", b.space_name)
        });
        let (subject, headline, todo) = match (alert.kind, &alert.booking_id) {
            (FailureKind::PinNotRevoked, _) => {
                let cancelled = match &alert.booking {
                    Some(b) if b.cancelled => "cancelled ",
                    _ => "",
                };
                (
                    format!("URGENT: {cancelled}booking {booking_id} still opens {space}"),
                    format!(
                        "Booking {booking_id} no longer wants a PIN, but its guest in RemoteLock \
                         could not be deactivated: its PIN still opens {space}."
                    ),
                    format!(
                        "If the door must not open, deactivate the guest in the RemoteLock \
                         dashboard now. lockbridge keeps trying meanwhile; once the cause below \
                         is fixed, {retry} tries again at once."
                    ),
                )
            }
            (FailureKind::PinNotIssued, _) => (
                format!("No PIN for booking {booking_id}{when}"),
                format!("Booking {booking_id} has no PIN: lockbridge could not issue one."),
                format!(
                    "Fix the cause below, then {retry} issues the PIN and emails the patron. \
                     Until then, let the patron in another way."
                ),
            ),
            (FailureKind::EmailNotSent, Some(_)) => (
                format!("Patron not emailed their PIN for booking {booking_id}{when}"),
                format!(
                    "The patron of booking {booking_id} was not emailed their PIN; the PIN itself \
                     works."
                ),
                format!(
                    "Tell the patron their PIN another way: the admin's booking view shows it \
                     (GET /api/v1/bookings/{booking_id}). If their address was wrong, correct it \
                     in the booking system, which sends the email again; {retry} sends it again \
                     as it is."
                ),
            ),
            (FailureKind::EmailNotSent, None) => (
                "PIN emails are not going out: the SMTP relay is failing".to_owned(),
                "The SMTP relay refuses or cannot take lockbridge's emails, so no patron is \
                 being emailed their PIN."
                    .to_owned(),
                format!(
                    "Check the relay and lockbridge's smtp.url (address, credentials, permission \
                     to relay for smtp.from). The emails wait and go out by themselves once the \
                     relay takes them; {retry} sends them at once."
                ),
            ),
            (FailureKind::LockOffline | FailureKind::LockBatteryLow, _) => (
                format!("Lock needs attention: {}", alert.reason),
                "A lock with bookings coming up needs a person: it may not take new PINs, or \
                 may stop opening."
                    .to_owned(),
                "Look at the lock on the admin's Locks page: reconnect it (Wi-Fi, hub) or change \
                 its batteries. This alert resolves by itself once the lock reports it is well."
                    .to_owned(),
            ),
            (FailureKind::PinNotSynced, _) => (
                format!("PIN not yet on the lock for booking {booking_id}{when}"),
                format!(
                    "The lock of {space} has not confirmed booking {booking_id}'s PIN, and the \
                     booking starts soon: the PIN may not open the door."
                ),
                "Check the lock on the admin's Locks page: an offline lock takes the PIN when \
                 it reconnects, a flat battery needs changing. lockbridge sends the PIN to the \
                 lock again by itself; if the start is near, be ready to let the patron in."
                    .to_owned(),
            ),
            (FailureKind::Authorization, _) => (
                "RemoteLock authorization stopped working".to_owned(),
                "lockbridge can no longer act on RemoteLock: no PIN can be issued or revoked."
                    .to_owned(),
                format!(
                    "Authorize lockbridge again in the admin (POST /api/v1/remotelock/\
                     authorization), with the same RemoteLock account. Then {retry} runs the \
                     bookings that waited."
                ),
            ),
        };
        let mut facts = vec![("What failed", alert.reason.clone())];
        if let Some(b) = &alert.booking {
            let start = b.starts_at.with_timezone(&b.time_zone.tz()).format(START);
            facts.push((
                "Booking",
                format!(
                    "{booking_id}: {} at {}, starting {start} ({})",
                    b.space_name,
                    b.location_name,
                    b.time_zone.name()
                ),
            ));
        } else if !booking_id.is_empty() {
            facts.push(("Booking", booking_id.to_owned()));
        }
        facts.push((
            "Since",
            alert.since.format("%a %-d %b %Y %H:%M UTC").to_string(),
        ));
        facts.push(("Attempts", alert.attempts.to_string()));
        facts.push(("Failure", format!("{id} (GET /api/v1/failures)")));
        Self {
            subject,
            headline,
            facts,
            todo,
        }
    }

    fn text(&self) -> String {
        let facts: String = self
            .facts
            .iter()
            .map(|(label, value)| format!("{:<12} {value}\n", format!("{label}:")))
            .collect();
        format!(
            "{}\n\n{facts}\nWhat to do: {}\n\nThe failure leaves the list by itself once what it is about works.\n",
            self.headline, self.todo
        )
    }

    fn html(&self) -> String {
        let facts: String = self
            .facts
            .iter()
            .map(|(label, value)| {
                format!(
                    "<tr><th align=\"left\">{label}</th><td>{}</td></tr>\n",
                    escape(value)
                )
            })
            .collect();
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{}</title></head>
<body style="font-family: sans-serif; line-height: 1.5">
<p><strong>{}</strong></p>
<table>
{facts}</table>
<p>What to do: {}</p>
<p>The failure leaves the list by itself once what it is about works.</p>
</body>
</html>
"#,
            escape(&self.subject),
            escape(&self.headline),
            escape(&self.todo)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: FailureKind, booked: bool) -> Alert {
        Alert {
            failure_id: 7,
            kind,
            reason: "RemoteLock refused the request (422): <bad> & worse".into(),
            since: "2027-01-12T18:55:00Z".parse().unwrap(),
            attempts: 3,
            booking_id: booked.then(|| BookingId::parse("b-17").unwrap()),
            booking: booked.then(|| BookedSpace {
                cancelled: true,
                space_name: "Study Room 101".into(),
                location_name: "Main Library".into(),
                starts_at: "2027-01-12T19:00:00Z".parse().unwrap(),
                time_zone: "America/New_York".parse().unwrap(),
            }),
        }
    }

    #[test]
    fn each_kind_says_what_and_where() {
        let subjects = [
            (
                FailureKind::PinNotRevoked,
                true,
                "URGENT: cancelled booking b-17 still opens Study Room 101",
            ),
            (
                FailureKind::PinNotIssued,
                true,
                "No PIN for booking b-17 (Study Room 101, Tue 12 Jan 14:00)",
            ),
            (
                FailureKind::EmailNotSent,
                true,
                "Patron not emailed their PIN for booking b-17 (Study Room 101, Tue 12 Jan 14:00)",
            ),
            (
                FailureKind::EmailNotSent,
                false,
                "PIN emails are not going out: the SMTP relay is failing",
            ),
            (
                FailureKind::Authorization,
                false,
                "RemoteLock authorization stopped working",
            ),
        ];
        for (kind, booked, subject) in subjects {
            let email = render(&alert(kind, booked));
            assert_eq!(email.subject, subject);
            for fact in [
                "What failed:",
                "Since:       Tue 12 Jan 2027 18:55 UTC",
                "POST /api/v1/failures/7/retry",
            ] {
                assert!(
                    email.text.contains(fact),
                    "{fact:?} missing from:\n{}",
                    email.text
                );
            }
            if booked {
                assert!(
                    email.text.contains("b-17: Study Room 101 at Main Library, starting Tue 12 Jan 14:00 (America/New_York)"),
                    "{}",
                    email.text
                );
            }
        }
    }

    #[test]
    fn a_booking_that_is_not_stored_is_still_named() {
        let mut alert = alert(FailureKind::PinNotRevoked, true);
        alert.booking = None;
        let email = render(&alert);
        assert_eq!(email.subject, "URGENT: booking b-17 still opens its door");
        assert!(email.text.contains("Booking:     b-17\n"), "{}", email.text);
    }

    #[test]
    fn the_html_body_escapes_what_came_from_outside() {
        let email = render(&alert(FailureKind::PinNotIssued, true));
        assert!(
            email.html.contains("(422): &lt;bad&gt; &amp; worse"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<bad>"), "{}", email.html);
        assert!(
            email.text.contains("(422): <bad> & worse"),
            "{}",
            email.text
        );
    }
}
