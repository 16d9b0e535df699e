//! How LibCal's catalogue and booking rows become intake's: ids, kinds, statuses, times.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use lockbridge_domain::BookingStatus;
use serde_json::{Value, json};

use crate::libcal::BookingRow;

/// Intake refuses longer names (its `MAX_NAME_LEN`).
const MAX_NAME_CHARS: usize = 200;

/// Intake's ids for LibCal's: one prefix per kind, since LibCal's ids are plain numbers.
pub fn location_id(lid: u64) -> String {
    format!("libcal-loc-{lid}")
}

pub fn category_id(cid: u64) -> String {
    format!("libcal-cat-{cid}")
}

pub fn space_id(eid: u64) -> String {
    format!("libcal-space-{eid}")
}

/// A seat is a space of its own to intake (kind `seat`), so its bookings flow but get no PIN.
pub fn seat_id(seat: u64) -> String {
    format!("libcal-seat-{seat}")
}

/// A name as intake takes it: trimmed, at most its length.
pub fn name(text: &str) -> String {
    text.trim().chars().take(MAX_NAME_CHARS).collect()
}

/// What LibCal's status says of a booking (issue 7's mapping); `None` for a status this
/// version does not know, which is logged and left alone.
pub fn status(row: &BookingRow) -> Option<BookingStatus> {
    let status = row.status.trim();
    if row.cancelled.is_some() || status.starts_with("Cancelled") || status == "Mediated Denied" {
        return Some(BookingStatus::Cancelled);
    }
    match status {
        "Tentative" | "Mediated Tentative" => Some(BookingStatus::Tentative),
        "Confirmed" | "Mediated Approved" => Some(BookingStatus::Confirmed),
        // "Confirmed (Payment Pending)" and its kin [C: FAQ-2104].
        _ if status.starts_with("Confirmed (") => Some(BookingStatus::Confirmed),
        _ => None,
    }
}

/// A LibCal time: local with a numeric offset [R]; `+hhmm` is read too.
pub fn time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text.trim())
        .or_else(|_| DateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
}

/// One LibCal row as the connector keeps it and sends it to intake.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub booking_id: String,
    pub book_id: String,
    pub lid: u64,
    pub starts_at: DateTime<Utc>,
    /// The intake booking body, without the revision.
    pub body: Value,
    pub cancelled: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// A status this version does not know: the row is left as it was.
    UnknownStatus(String),
    /// A time that is not a time (the row is left as it was, and logged).
    BadTime(&'static str),
}

/// The row's key: its own `id` when LibCal gives one [T], else what identifies one row of a
/// transaction (its bookId, space, seat and start) [I].
pub fn booking_id(row: &BookingRow) -> String {
    match row.id {
        Some(id) => format!("libcal-{id}"),
        None => {
            let start: String = row
                .from_date
                .chars()
                .filter(char::is_ascii_digit)
                .take(12)
                .collect();
            let seat = row.seat().unwrap_or(0);
            let book: String = row
                .book_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            format!("libcal-{book}-{}-{seat}-{start}", row.eid)
        }
    }
}

pub fn desired(row: &BookingRow) -> Result<Desired, Unusable> {
    let status = status(row).ok_or_else(|| Unusable::UnknownStatus(row.status.clone()))?;
    let starts = time(&row.from_date).ok_or(Unusable::BadTime("fromDate"))?;
    let ends = time(&row.to_date).ok_or(Unusable::BadTime("toDate"))?;
    let space = match row.seat() {
        Some(seat) => seat_id(seat),
        None => space_id(row.eid),
    };
    let patron = [row.first_name.as_deref(), row.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Intake needs a name; LibCal's are optional [I]. The address names the patron too.
    let patron = if patron.is_empty() {
        row.email.trim().to_owned()
    } else {
        name(&patron)
    };
    let body = json!({
        "space_id": space,
        "starts_at": starts.to_rfc3339_opts(SecondsFormat::Secs, false),
        "ends_at": ends.to_rfc3339_opts(SecondsFormat::Secs, false),
        "status": status,
        "patron": {"name": patron, "email": row.email.trim()},
    });
    Ok(Desired {
        booking_id: booking_id(row),
        book_id: row.book_id.clone(),
        lid: row.lid,
        starts_at: starts.with_timezone(&Utc),
        body,
        cancelled: status == BookingStatus::Cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str) -> BookingRow {
        serde_json::from_value(json!({
            "id": 7, "bookId": "cs_AbC12345", "eid": 3, "cid": 2, "lid": 1,
            "fromDate": "2026-03-08T01:30:00-05:00", "toDate": "2026-03-08T03:30:00-04:00",
            "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.edu",
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn statuses_map_as_the_issue_says() {
        use BookingStatus::*;
        for (text, expected) in [
            ("Tentative", Some(Tentative)),
            ("Mediated Tentative", Some(Tentative)),
            ("Confirmed", Some(Confirmed)),
            ("Confirmed (Payment Pending)", Some(Confirmed)),
            ("Mediated Approved", Some(Confirmed)),
            ("Mediated Denied", Some(Cancelled)),
            ("Cancelled", Some(Cancelled)),
            ("Cancelled by User", Some(Cancelled)),
            ("Cancelled by Admin", Some(Cancelled)),
            ("Cancelled by System", Some(Cancelled)),
            ("Checked In", None),
            ("", None),
        ] {
            assert_eq!(status(&row(text)), expected, "{text:?}");
        }
        let mut stamped = row("Confirmed");
        stamped.cancelled = Some("2026-03-01T10:00:00-05:00".into());
        assert_eq!(
            status(&stamped),
            Some(Cancelled),
            "a cancelled timestamp wins"
        );
    }

    #[test]
    fn a_row_becomes_an_intake_body_with_its_offsets_kept() {
        let desired = desired(&row("Confirmed")).unwrap();
        assert_eq!(desired.booking_id, "libcal-7");
        assert_eq!(
            desired.body,
            json!({
                "space_id": "libcal-space-3",
                // Across the spring-forward gap: each end keeps its own offset.
                "starts_at": "2026-03-08T01:30:00-05:00",
                "ends_at": "2026-03-08T03:30:00-04:00",
                "status": "confirmed",
                "patron": {"name": "Ada Lovelace", "email": "ada@example.edu"},
            })
        );
        assert_eq!(desired.starts_at.to_rfc3339(), "2026-03-08T06:30:00+00:00");
    }

    #[test]
    fn a_seat_row_books_the_seat_and_a_row_without_id_has_a_stable_key() {
        let mut seat = row("Confirmed");
        seat.seat_id = Some(44);
        seat.id = None;
        let desired = desired(&seat).unwrap();
        assert_eq!(desired.body["space_id"], "libcal-seat-44");
        assert_eq!(desired.booking_id, "libcal-cs_AbC12345-3-44-202603080130");
    }

    #[test]
    fn unknown_statuses_and_bad_times_are_unusable() {
        assert_eq!(
            desired(&row("Checked Out")),
            Err(Unusable::UnknownStatus("Checked Out".into()))
        );
        let mut bad = row("Confirmed");
        bad.to_date = "tomorrow".into();
        assert_eq!(desired(&bad), Err(Unusable::BadTime("toDate")));
    }

    #[test]
    fn a_nameless_patron_is_named_by_the_address() {
        let mut nameless = row("Confirmed");
        nameless.first_name = None;
        nameless.last_name = Some(" ".into());
        assert_eq!(
            desired(&nameless).unwrap().body["patron"]["name"],
            "ada@example.edu"
        );
    }
}
