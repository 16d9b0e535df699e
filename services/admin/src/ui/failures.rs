//! The Failures page: the failures that need a person, each with its reason, age and
//! attempts and a Retry button (the API's retry), and how many messages wait in each
//! dead-letter queue, for the ops tools.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use chrono::Utc;
use lockbridge_domain::TimeZone;
use lockbridge_work::failures::{self, FailureKind};

use super::{
    land_on,
    page::{Chrome, Section, UiError, local_time, render, sentence, utc_time},
    session::{NoFields, Posted},
};
use crate::{
    dead_letters::{self, DeadLetters},
    failures::retry_now,
    staff::sessions::{Notice, Session},
    startup::AppState,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/failures", get(show))
        .route("/failures/{id}/retry", post(retry))
}

#[derive(Template)]
#[template(path = "failures.html")]
struct FailuresPage {
    chrome: Chrome,
    failures: Vec<FailureRow>,
    dead_letters: Vec<DeadLetters>,
}

struct FailureRow {
    id: i64,
    kind: &'static str,
    booking_id: Option<String>,
    reason: String,
    since: String,
    age: String,
    attempts: i32,
}

pub(crate) fn kind_label(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::PinNotIssued => "PIN not issued",
        FailureKind::PinNotRevoked => "PIN not revoked",
        FailureKind::EmailNotSent => "email not sent",
        FailureKind::Authorization => "authorization",
        FailureKind::PinNotSynced => "PIN not on the lock",
        FailureKind::LockOffline => "lock offline",
        FailureKind::LockBatteryLow => "lock battery low",
    }
}

/// “under a minute”, “25 minutes”, “3 hours”, “2 days”: how long a failure has been open.
fn age(duration: chrono::Duration) -> String {
    let (count, unit) = match duration.num_minutes() {
        m if m < 1 => return "under a minute".to_owned(),
        m if m < 60 => (m, "minute"),
        m if m < 48 * 60 => (m / 60, "hour"),
        m => (m / (24 * 60), "day"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

async fn show(State(state): State<AppState>, session: Session) -> Result<Response, UiError> {
    let now = Utc::now();
    let open = failures::open(&state.pool).await?;
    let booked: Vec<&str> = open
        .iter()
        .filter_map(|f| f.booking_id.as_ref().map(|id| id.as_str()))
        .collect();
    // Each booking's location zone; a failure of the whole system is timed in UTC.
    let zones: HashMap<String, String> = sqlx::query_as(
        "SELECT b.booking_id, l.time_zone FROM bookings b
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         WHERE b.booking_id = ANY($1)",
    )
    .bind(&booked)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .collect();
    let failures = open
        .into_iter()
        .map(|f| {
            let zone = f.booking_id.as_ref().and_then(|id| zones.get(id.as_str()));
            FailureRow {
                id: f.id,
                kind: kind_label(f.kind),
                booking_id: f.booking_id.map(|id| id.to_string()),
                reason: f.reason,
                since: zone.map_or_else(
                    || utc_time(f.since),
                    |zone| local_time(f.since, TimeZone::from_stored(zone)),
                ),
                age: age(now - f.since),
                attempts: f.attempts,
            }
        })
        .collect();
    let page = FailuresPage {
        chrome: Chrome::shown(&state, &session, Section::Failures).await?,
        failures,
        dead_letters: dead_letters::count(&state.broker).await,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn retry(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    let notice = match raw_id.parse::<i64>() {
        Err(_) => Notice::failed(format!("“{raw_id}” is not the number of a failure.")),
        Ok(id) => match retry_now(&state.pool, id).await {
            Ok(()) => Notice::done(format!(
                "Failure {id} runs again now, from its first attempt: it leaves this list by \
                 itself once what it is about works."
            )),
            Err(problem) => Notice::failed(sentence(&problem.detail)),
        },
    };
    Ok(land_on("/failures", &state.pool, &posted.session, &notice).await)
}

#[cfg(test)]
mod tests {
    use super::age;
    use chrono::Duration;

    #[test]
    fn an_age_reads_in_one_unit() {
        assert_eq!(age(Duration::seconds(20)), "under a minute");
        assert_eq!(age(Duration::minutes(1)), "1 minute");
        assert_eq!(age(Duration::minutes(125)), "2 hours");
        assert_eq!(age(Duration::hours(47)), "47 hours");
        assert_eq!(age(Duration::days(3)), "3 days");
    }
}
