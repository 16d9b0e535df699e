//! Bookings as staff look them up: a search by patron, email, space, date or booking id, and
//! a booking's details — its status, the PIN (shown on request, each showing recorded), its
//! window on the lock with the lead and grace that made it, the guest in RemoteLock's
//! dashboard, the history — and Reissue PIN, after a confirmation.

use askama::Template;
use axum::{
    Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
    routing::get,
};
use chrono::{DateTime, NaiveDate, Utc};
use lockbridge_domain::{BookingId, BookingStatus, PinState, TimeZone};
use serde::Deserialize;
use sqlx::PgPool;

use super::{
    activity, land_on,
    page::{Chrome, Section, UiError, local_time, render, sentence, span},
    session::{NoFields, Posted},
};
use crate::{
    bookings::{self, BookingView, DoorActivity},
    settings,
    staff::sessions::{Notice, Session},
    startup::AppState,
};

/// A search shows at most this many bookings, the soonest first.
const MAX_RESULTS: i64 = 50;
const MAX_QUERY_CHARS: usize = 200;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/bookings", get(search))
        .route("/bookings/{booking_id}", get(show).post(show_pin))
        .route(
            "/bookings/{booking_id}/reissue",
            get(confirm_reissue).post(reissue),
        )
}

fn status_label(status: BookingStatus) -> &'static str {
    match status {
        BookingStatus::Tentative => "tentative",
        BookingStatus::Confirmed => "confirmed",
        BookingStatus::Cancelled => "cancelled",
    }
}

fn pin_label(state: PinState) -> &'static str {
    match state {
        PinState::NotApplicable => "not applicable (the space has no lock)",
        PinState::Pending => "pending",
        PinState::Issued => "issued",
        PinState::Synced => "on the lock (issued, and the lock confirmed it)",
        PinState::Failed => "failed",
        PinState::Revoked => "revoked",
        PinState::Expired => "expired (the booking ended before a PIN was needed)",
    }
}

#[derive(Deserialize, Default)]
struct Criteria {
    #[serde(default)]
    q: String,
    #[serde(default)]
    date: String,
}

#[derive(Template)]
#[template(path = "bookings.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    date: String,
    /// What was searched, as a sentence; `None` before any search (upcoming bookings).
    searched: Option<String>,
    error: Option<String>,
    results: Vec<ResultRow>,
}

struct ResultRow {
    summary: Summary,
    pin: &'static str,
}

/// What both a search's row and a booking's page say of a booking first.
struct Summary {
    booking_id: String,
    patron: String,
    email: String,
    /// “Study Room 101 (Riverside Main)”.
    space: String,
    /// In the location's zone, named.
    when: String,
    status: &'static str,
}

/// The place of a booking, for its [`Summary`].
struct Place<'a> {
    space_name: &'a str,
    location_name: &'a str,
    time_zone: TimeZone,
}

impl Summary {
    fn new(
        booking_id: &BookingId,
        patron: (String, String),
        place: Place<'_>,
        window: (DateTime<Utc>, DateTime<Utc>),
        status: BookingStatus,
    ) -> Self {
        let (patron, email) = patron;
        Self {
            booking_id: booking_id.to_string(),
            patron,
            email,
            space: format!("{} ({})", place.space_name, place.location_name),
            when: local_span(window.0, window.1, place.time_zone),
            status: status_label(status),
        }
    }
}

/// From `from` to `until` in `zone`, named: “2027-01-12 09:45–11:05 EST (America/New_York)”
/// within a day and an offset, both times in full otherwise.
fn local_span(from: DateTime<Utc>, until: DateTime<Utc>, zone: TimeZone) -> String {
    let (start, end) = (
        from.with_timezone(&zone.tz()),
        until.with_timezone(&zone.tz()),
    );
    if start.date_naive() == end.date_naive() && start.offset() == end.offset() {
        format!(
            "{}–{} ({})",
            start.format("%Y-%m-%d %H:%M"),
            end.format("%H:%M %Z"),
            zone.name()
        )
    } else {
        format!("{} to {}", local_time(from, zone), local_time(until, zone))
    }
}

#[derive(sqlx::FromRow)]
struct Found {
    booking_id: BookingId,
    patron_name: String,
    patron_email: String,
    space_name: String,
    location_name: String,
    time_zone: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: BookingStatus,
    linked: bool,
    pin_state: Option<PinState>,
}

async fn search(
    State(state): State<AppState>,
    session: Session,
    criteria: Result<Query<Criteria>, QueryRejection>,
) -> Result<Response, UiError> {
    let Query(criteria) = criteria.unwrap_or_default();
    let q: String = criteria.q.trim().chars().take(MAX_QUERY_CHARS).collect();
    let date = criteria.date.trim();
    let (date, error) = match date {
        "" => (None, None),
        raw => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(day) => (Some(day), None),
            Err(_) => (
                None,
                Some(format!("“{raw}” is not a date: write it as 2027-01-12.")),
            ),
        },
    };
    let searched = (!q.is_empty() || date.is_some()).then(|| match (&q, date) {
        (q, Some(day)) if !q.is_empty() => format!("Bookings matching “{q}” on {day}"),
        (_, Some(day)) => format!("Bookings on {day}"),
        (q, None) => format!("Bookings matching “{q}”"),
    });
    let found = if error.is_some() {
        Vec::new()
    } else {
        find(&state.pool, &q, date).await?
    };
    let page = SearchPage {
        chrome: Chrome::shown(&state, &session, Section::Bookings).await?,
        q,
        date: criteria.date.trim().to_owned(),
        searched,
        error,
        results: found
            .into_iter()
            .map(|b| {
                let place = Place {
                    space_name: &b.space_name,
                    location_name: &b.location_name,
                    time_zone: TimeZone::from_stored(&b.time_zone),
                };
                ResultRow {
                    summary: Summary::new(
                        &b.booking_id,
                        (b.patron_name, b.patron_email),
                        place,
                        (b.starts_at, b.ends_at),
                        b.status,
                    ),
                    pin: pin_label(
                        b.pin_state
                            .unwrap_or_else(|| PinState::before_provisioning(b.linked, b.status)),
                    ),
                }
            })
            .collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

/// `q` matches a booking id or space id exactly, or part of the patron's name or email or the
/// space's name, whatever the case; `date` is the day the booking starts in its location's
/// zone. With neither, the upcoming bookings.
async fn find(pool: &PgPool, q: &str, date: Option<NaiveDate>) -> Result<Vec<Found>, sqlx::Error> {
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as(
        "SELECT b.booking_id, b.patron_name, b.patron_email, s.name AS space_name,
                l.name AS location_name, l.time_zone, b.starts_at, b.ends_at, b.status,
                (k.space_id IS NOT NULL) AS linked, p.state AS pin_state
         FROM bookings b
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         LEFT JOIN lock_links k ON k.space_id = b.space_id
         LEFT JOIN booking_pins p ON p.booking_id = b.booking_id
         WHERE ($1 = '' OR b.booking_id = $1 OR b.space_id = $1 OR b.patron_name ILIKE $2
                OR b.patron_email ILIKE $2 OR s.name ILIKE $2)
           AND ($3::date IS NULL OR (b.starts_at AT TIME ZONE l.time_zone)::date = $3)
           AND ($1 <> '' OR $3::date IS NOT NULL OR b.ends_at > now())
         ORDER BY b.starts_at, b.booking_id
         LIMIT $4",
    )
    .bind(q)
    .bind(pattern)
    .bind(date)
    .bind(MAX_RESULTS)
    .fetch_all(pool)
    .await
}

#[derive(Template)]
#[template(path = "booking.html")]
struct BookingPage {
    chrome: Chrome,
    booking: BookingFacts,
    /// The PIN, on the page that answers Show PIN.
    shown_pin: Option<String>,
}

/// What the booking page and the reissue confirmation say of a booking.
struct BookingFacts {
    summary: Summary,
    pin_state: &'static str,
    pin_version: i32,
    has_pin: bool,
    can_reissue: bool,
    /// The PIN's window as the lock reads it, with its zone.
    window: Option<String>,
    lead: Option<String>,
    grace: Option<String>,
    /// Which setting gave the lead and the grace.
    lead_source: Option<String>,
    grace_source: Option<String>,
    manage_url: Option<String>,
    last_error: Option<String>,
    history: Vec<HistoryRow>,
    activity: Vec<ActivityRow>,
}

/// One thing the door reported about the booking's guest, in words.
struct ActivityRow {
    at: String,
    what: String,
    lock_id: String,
}

impl ActivityRow {
    fn of(entry: DoorActivity, zone: TimeZone) -> Self {
        let what = activity::describe(
            &entry.kind,
            entry.status.as_deref(),
            entry.status_info.as_deref(),
        );
        Self {
            at: local_time(entry.at, zone),
            what,
            lock_id: entry.lock_id.unwrap_or_default(),
        }
    }
}

struct HistoryRow {
    at: String,
    state: &'static str,
    reason: String,
}

impl From<BookingView> for BookingFacts {
    fn from(view: BookingView) -> Self {
        let zone = TimeZone::from_stored(&view.time_zone);
        let lock_zone = view
            .pin
            .lock_time_zone
            .as_deref()
            .map(TimeZone::from_stored);
        let window = match (view.pin.valid_from, view.pin.valid_until, lock_zone) {
            (Some(from), Some(until), Some(lock_zone)) => Some((from, until, lock_zone)),
            _ => None,
        };
        let has_pin = view.pin.pin.is_some();
        let place = Place {
            space_name: &view.space_name,
            location_name: &view.location_name,
            time_zone: zone,
        };
        Self {
            summary: Summary::new(
                &view.booking_id,
                (view.patron.name, view.patron.email),
                place,
                (view.starts_at, view.ends_at),
                view.status,
            ),
            pin_state: pin_label(view.pin.state),
            pin_version: view.pin.pin_version,
            has_pin,
            can_reissue: has_pin && view.pin.valid_until.is_some_and(|until| until > Utc::now()),
            window: window.map(|(from, until, lock_zone)| local_span(from, until, lock_zone)),
            lead: window.map(|(from, ..)| span(view.starts_at - from)),
            grace: window.map(|(_, until, _)| span(until - view.ends_at)),
            lead_source: None,
            grace_source: None,
            manage_url: view.remotelock_url.map(String::from),
            last_error: view.pin.last_error,
            history: view
                .history
                .into_iter()
                .map(|entry| HistoryRow {
                    at: local_time(entry.at, zone),
                    state: entry.state.as_str(),
                    reason: entry.reason,
                })
                .collect(),
            activity: view
                .activity
                .into_iter()
                .map(|entry| ActivityRow::of(entry, zone))
                .collect(),
        }
    }
}

fn booking_id(raw: String) -> Result<BookingId, UiError> {
    BookingId::parse(raw)
        .map_err(|error| UiError::BadForm(format!("no such booking: its id {error}")))
}

async fn facts(
    state: &AppState,
    booking_id: &BookingId,
) -> Result<(BookingFacts, Option<String>), UiError> {
    let view = bookings::details(state, booking_id).await?;
    let applied = settings::applied(&state.pool, &view.space_id).await?;
    let made = view
        .pin
        .valid_from
        .zip(view.pin.valid_until)
        .map(|(from, until)| (view.starts_at - from, until - view.ends_at));
    let names = (view.space_name.clone(), view.location_name.clone());
    let configured = state.configured_window;
    let pin = view.pin.pin.clone();
    let mut facts = BookingFacts::from(view);
    if let Some((lead, grace)) = made {
        let set_lead = (applied.lead_time_secs, applied.lead_time_scope.as_deref());
        let set_grace = (applied.grace_secs, applied.grace_scope.as_deref());
        facts.lead_source = Some(source(lead, set_lead, configured.lead_time, &names));
        facts.grace_source = Some(source(grace, set_grace, configured.grace, &names));
    }
    Ok((facts, pin))
}

/// Which setting a PIN's lead or grace came from: the most specific one set (`set`, with the
/// scope that set it), else the configuration — or, when the PIN was made before the current
/// settings, that it follows them at its next update.
fn source(
    made: chrono::Duration,
    set: (Option<i32>, Option<&str>),
    configured: std::time::Duration,
    (space, location): &(String, String),
) -> String {
    let (secs, from) = match set {
        (Some(secs), Some("space")) => (i64::from(secs), format!("{space}'s setting")),
        (Some(secs), Some("location")) => (i64::from(secs), format!("{location}'s setting")),
        (Some(secs), _) => (i64::from(secs), "the setting for every space".to_owned()),
        (None, _) => (configured.as_secs() as i64, "the configuration".to_owned()),
    };
    if made.num_seconds() == secs {
        from
    } else {
        format!(
            "an earlier setting; {from} now says {}",
            span(chrono::Duration::seconds(secs))
        )
    }
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(raw_id): Path<String>,
) -> Result<Response, UiError> {
    let (booking, _) = facts(&state, &booking_id(raw_id)?).await?;
    booking_page(&state, &session, booking, None).await
}

async fn booking_page(
    state: &AppState,
    session: &Session,
    booking: BookingFacts,
    shown_pin: Option<String>,
) -> Result<Response, UiError> {
    let page = BookingPage {
        chrome: Chrome::shown(state, session, Section::Bookings).await?,
        booking,
        shown_pin,
    };
    Ok(render(StatusCode::OK, &page))
}

/// Back to the booking's page, which says `notice`.
async fn back_to_booking(
    state: &AppState,
    session: &Session,
    booking_id: &BookingId,
    notice: Notice,
) -> Response {
    land_on(
        &format!("/bookings/{booking_id}"),
        &state.pool,
        session,
        &notice,
    )
    .await
}

/// Show PIN: the page again, with the PIN, once the showing is recorded.
async fn show_pin(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    let booking_id = booking_id(raw_id)?;
    let (booking, pin) = facts(&state, &booking_id).await?;
    let Some(pin) = pin else {
        let notice = Notice::failed(sentence(&format!(
            "booking {booking_id} has no PIN that works to show (its PIN is {})",
            booking.pin_state
        )));
        return Ok(back_to_booking(&state, &posted.session, &booking_id, notice).await);
    };
    sqlx::query(
        "INSERT INTO staff_pin_viewings (booking_id, pin_version, user_id, email)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&booking_id)
    .bind(booking.pin_version)
    .bind(posted.session.user_id)
    .bind(posted.session.email.as_str())
    .execute(&state.pool)
    .await?;
    tracing::info!(%booking_id, "staff were shown a PIN");
    booking_page(&state, &posted.session, booking, Some(pin)).await
}

#[derive(Template)]
#[template(path = "reissue.html")]
struct ReissuePage {
    chrome: Chrome,
    booking: BookingFacts,
}

async fn confirm_reissue(
    State(state): State<AppState>,
    session: Session,
    Path(raw_id): Path<String>,
) -> Result<Response, UiError> {
    let (booking, _) = facts(&state, &booking_id(raw_id)?).await?;
    let page = ReissuePage {
        chrome: Chrome::of(&session, Section::Bookings),
        booking,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn reissue(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    let booking_id = booking_id(raw_id)?;
    let notice = match bookings::reissue_pin(&state.pool, booking_id.clone()).await {
        Ok(reissuing) => Notice::done(format!(
            "A new PIN replaces PIN version {}: the patron gets it by email within a minute, and \
             the old one stops working.",
            reissuing.replaces_pin_version
        )),
        Err(problem) => Notice::failed(sentence(&problem.detail)),
    };
    Ok(back_to_booking(&state, &posted.session, &booking_id, notice).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_span_within_a_day_and_an_offset_is_written_once() {
        let zone: TimeZone = "America/New_York".parse().unwrap();
        assert_eq!(
            local_span(
                utc("2027-01-12T14:45:00Z"),
                utc("2027-01-12T16:05:00Z"),
                zone
            ),
            "2027-01-12 09:45–11:05 EST (America/New_York)"
        );
        // Across the night the clocks go back, each end says its own offset.
        assert_eq!(
            local_span(
                utc("2026-11-01T04:30:00Z"),
                utc("2026-11-01T07:00:00Z"),
                zone
            ),
            "2026-11-01 00:30 EDT (America/New_York) to 2026-11-01 02:00 EST (America/New_York)"
        );
        let tokyo: TimeZone = "Asia/Tokyo".parse().unwrap();
        assert_eq!(
            local_span(
                utc("2027-01-12T14:00:00Z"),
                utc("2027-01-12T16:00:00Z"),
                tokyo
            ),
            "2027-01-12 23:00 JST (Asia/Tokyo) to 2027-01-13 01:00 JST (Asia/Tokyo)"
        );
    }

    #[test]
    fn lead_and_grace_read_in_minutes_or_hours() {
        assert_eq!(span(chrono::Duration::minutes(15)), "15 minutes");
        assert_eq!(span(chrono::Duration::minutes(1)), "1 minute");
        assert_eq!(span(chrono::Duration::minutes(60)), "1 hour");
        assert_eq!(span(chrono::Duration::minutes(90)), "90 minutes");
        assert_eq!(span(chrono::Duration::zero()), "0 minutes");
    }
}
