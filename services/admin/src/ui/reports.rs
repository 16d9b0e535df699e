//! The Reports page: CSV downloads of the PINs issued, reissued and revoked per space over a
//! date range (from `pin_history`), and of the failures opened over one. Dates are the
//! locations' own; times are written in the location's zone, the zone in a column of its own.

use askama::Template;
use axum::{
    Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, NaiveDate, Utc};
use lockbridge_domain::{SpaceId, TimeZone};
use lockbridge_work::failures::FailureKind;
use serde::Deserialize;

use super::{
    failures::kind_label,
    page::{Chrome, Section, UiError, render},
};
use crate::{csv::Csv, spaces, staff::sessions::Session, startup::AppState};

/// A report covers at most about a year: more is a mistake, or a job for the database.
const MAX_DAYS: i64 = 366;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports", get(show))
        .route("/reports/pins.csv", get(pins))
        .route("/reports/failures.csv", get(failures))
}

#[derive(Deserialize, Default)]
struct Range {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// PINs of this space only; empty: every space.
    #[serde(default)]
    space: String,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    chrome: Chrome,
    spaces: Vec<(String, String)>,
    /// Which form the errors are about, and the values it was sent with.
    errors_for: &'static str,
    errors: Vec<String>,
    range: Range,
}

async fn page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    errors_for: &'static str,
    errors: Vec<String>,
    range: Range,
) -> Result<Response, UiError> {
    let spaces = spaces::catalogue(&state.pool, false)
        .await?
        .into_iter()
        .filter(|s| s.is_bookable_as_whole())
        .map(|s| {
            let label = format!("{} ({})", s.name, s.location.name);
            (s.space_id.to_string(), label)
        })
        .collect();
    let page = ReportsPage {
        chrome: Chrome::shown(state, session, Section::Reports).await?,
        spaces,
        errors_for,
        errors,
        range,
    };
    Ok(render(status, &page))
}

async fn show(State(state): State<AppState>, session: Session) -> Result<Response, UiError> {
    page(
        &state,
        &session,
        StatusCode::OK,
        "",
        Vec::new(),
        Range::default(),
    )
    .await
}

/// The range's days, or a sentence for each thing wrong with it.
fn days(range: &Range) -> Result<(NaiveDate, NaiveDate), Vec<String>> {
    let date = |what: &str, raw: &str| match raw.trim() {
        "" => Err(format!("{what}: give a date, such as 2027-01-12.")),
        raw => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| format!("{what}: “{raw}” is not a date: write it as 2027-01-12.")),
    };
    match (date("From", &range.from), date("To", &range.to)) {
        (Ok(from), Ok(to)) if to < from => Err(vec![format!(
            "To: {to} is before {from}; the range ends on or after the day it starts."
        )]),
        (Ok(from), Ok(to)) if (to - from).num_days() >= MAX_DAYS => Err(vec![format!(
            "The range is {} days long; a report covers at most {MAX_DAYS}.",
            (to - from).num_days() + 1
        )]),
        (Ok(from), Ok(to)) => Ok((from, to)),
        (from, to) => Err([from.err(), to.err()].into_iter().flatten().collect()),
    }
}

/// A wall clock in `zone`, for a spreadsheet: “2027-01-12 09:45”.
fn local(at: DateTime<Utc>, zone: TimeZone) -> String {
    zone.local(at).format("%Y-%m-%d %H:%M").to_string()
}

fn download(name: String, csv: Csv) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        csv.into_text(),
    )
        .into_response()
}

#[derive(sqlx::FromRow)]
struct PinRow {
    at: DateTime<Utc>,
    time_zone: String,
    location_name: String,
    space_id: SpaceId,
    space_name: String,
    booking_id: String,
    event: String,
    detail: String,
    /// When the door first opened with the booking's PIN, if it did.
    first_use: Option<DateTime<Utc>>,
}

async fn pins(
    State(state): State<AppState>,
    session: Session,
    range: Result<Query<Range>, QueryRejection>,
) -> Result<Response, UiError> {
    let Query(range) = range.unwrap_or_default();
    let space = match range.space.trim() {
        "" => Ok(None),
        raw => SpaceId::parse(raw)
            .map(Some)
            .map_err(|_| format!("Space: “{raw}” is not a space of the catalogue.")),
    };
    let (Ok((from, to)), Ok(space)) = (days(&range), &space) else {
        let mut errors = days(&range).err().unwrap_or_default();
        errors.extend(space.err());
        return page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            "pins",
            errors,
            range,
        )
        .await;
    };
    // The provisioner writes a PIN's history; which kind of issue it was is the start of its
    // detail ("PIN reissued on lock …").
    let rows: Vec<PinRow> = sqlx::query_as(
        "SELECT h.at, l.time_zone, l.name AS location_name, s.space_id, s.name AS space_name,
                h.booking_id,
                CASE WHEN h.state = 'revoked' THEN 'revoked'
                     WHEN h.detail LIKE 'PIN reissued%' THEN 'reissued'
                     WHEN h.detail LIKE 'PIN changed%' THEN 'changed'
                     ELSE 'issued' END AS event,
                h.detail,
                (SELECT min(e.occurred_at) FROM remotelock_events e
                 WHERE e.booking_id = h.booking_id AND e.status = 'succeeded'
                   AND e.kind IN ('unlocked', 'access_person_used')) AS first_use
         FROM pin_history h
         JOIN bookings b ON b.booking_id = h.booking_id
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         WHERE h.state IN ('issued', 'revoked')
           AND (h.at AT TIME ZONE l.time_zone)::date BETWEEN $1 AND $2
           AND ($3::text IS NULL OR s.space_id = $3)
         ORDER BY l.name, s.name, s.space_id, h.at, h.id",
    )
    .bind(from)
    .bind(to)
    .bind(space.as_ref())
    .fetch_all(&state.pool)
    .await?;
    let mut csv = Csv::with_header(&[
        "location",
        "space_id",
        "space",
        "booking_id",
        "event",
        "at",
        "time_zone",
        "detail",
        "pin_used",
        "first_use",
    ]);
    for row in rows {
        let zone = TimeZone::from_stored(&row.time_zone);
        csv.row(&[
            row.location_name,
            row.space_id.to_string(),
            row.space_name,
            row.booking_id,
            row.event,
            local(row.at, zone),
            zone.name().to_owned(),
            row.detail,
            if row.first_use.is_some() { "yes" } else { "no" }.to_owned(),
            row.first_use.map(|at| local(at, zone)).unwrap_or_default(),
        ]);
    }
    tracing::info!(%from, %to, "staff downloaded the PIN report");
    Ok(download(format!("pins-{from}-to-{to}.csv"), csv))
}

#[derive(sqlx::FromRow)]
struct FailureRow {
    id: i64,
    kind: FailureKind,
    booking_id: Option<String>,
    space_name: Option<String>,
    time_zone: Option<String>,
    since: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    attempts: i32,
    reason: String,
}

async fn failures(
    State(state): State<AppState>,
    session: Session,
    range: Result<Query<Range>, QueryRejection>,
) -> Result<Response, UiError> {
    let Query(range) = range.unwrap_or_default();
    let (from, to) = match days(&range) {
        Ok(days) => days,
        Err(errors) => {
            return page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                "failures",
                errors,
                range,
            )
            .await;
        }
    };
    // A failure of the whole system has no location: its day and times are UTC's.
    let rows: Vec<FailureRow> = sqlx::query_as(
        "SELECT f.id, f.kind, f.booking_id, s.name AS space_name, l.time_zone, f.since,
                f.resolved_at, f.attempts, f.reason
         FROM failures f
         LEFT JOIN bookings b ON b.booking_id = f.booking_id
         LEFT JOIN spaces s ON s.space_id = b.space_id
         LEFT JOIN categories c ON c.category_id = s.category_id
         LEFT JOIN locations l ON l.location_id = c.location_id
         WHERE (f.since AT TIME ZONE coalesce(l.time_zone, 'UTC'))::date BETWEEN $1 AND $2
         ORDER BY f.since, f.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&state.pool)
    .await?;
    let mut csv = Csv::with_header(&[
        "failure_id",
        "kind",
        "booking_id",
        "space",
        "opened",
        "resolved",
        "time_zone",
        "attempts",
        "reason",
    ]);
    for row in rows {
        let zone = TimeZone::from_stored(row.time_zone.as_deref().unwrap_or("UTC"));
        csv.row(&[
            row.id.to_string(),
            kind_label(row.kind).to_owned(),
            row.booking_id.unwrap_or_default(),
            row.space_name.unwrap_or_default(),
            local(row.since, zone),
            row.resolved_at
                .map(|at| local(at, zone))
                .unwrap_or_default(),
            zone.name().to_owned(),
            row.attempts.to_string(),
            row.reason,
        ]);
    }
    Ok(download(format!("failures-{from}-to-{to}.csv"), csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: &str, to: &str) -> Range {
        Range {
            from: from.into(),
            to: to.into(),
            space: String::new(),
        }
    }

    #[test]
    fn a_range_is_two_dates_in_order_within_a_year() {
        assert!(days(&range("2027-01-01", "2027-01-31")).is_ok());
        assert_eq!(
            days(&range("", "31/01/2027")).unwrap_err(),
            [
                "From: give a date, such as 2027-01-12.",
                "To: “31/01/2027” is not a date: write it as 2027-01-12."
            ]
        );
        assert!(days(&range("2027-02-01", "2027-01-31")).unwrap_err()[0].contains("is before"));
        assert!(days(&range("2027-01-01", "2028-01-02")).unwrap_err()[0].contains("367 days long"));
    }
}
