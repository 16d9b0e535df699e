//! The bookings API: a body read into the change it asks for, stored by the writer.

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::put,
};
use lockbridge_domain::{BookingId, BookingStatus, BookingWindow, Patron, SpaceId, TraceParent};
use lockbridge_http::{
    input::{Fields, JsonObject, MAX_NAME_LEN, path_id},
    problem::Problem,
    trace::TraceContext,
};
use serde_json::Value;

use crate::{
    auth::Source,
    batch::{BookingContent, Change, Request},
    startup::AppState,
    view::{BookingView, load_view},
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/bookings/{booking_id}",
        put(put_booking).delete(cancel_booking).get(get_booking),
    )
}

/// A booking is at most this long; anything longer is almost surely a unit mistake upstream.
const MAX_BOOKING_DAYS: i64 = 31;
const MAX_EMAIL_LEN: usize = 254;

/// Reads a booking body (design §3.1) into the change it asks for; `None` when a field is
/// wrong, which `fields` has then recorded.
pub(crate) fn read_put(fields: &mut Fields<'_>) -> Option<Change> {
    let space_id = fields.parsed("space_id", |s| SpaceId::parse(s));
    let starts_at = fields.instant("starts_at");
    let ends_at = fields.instant("ends_at");
    let status = fields.parsed("status", |s| {
        serde_json::from_value::<BookingStatus>(Value::String(s.to_owned()))
            .map_err(|_| "must be one of tentative, confirmed, cancelled")
    });
    let patron = fields.object("patron", |patron| {
        let name = patron.text("name", MAX_NAME_LEN);
        let email = patron.parsed("email", parse_email);
        Some(Patron {
            name: name?,
            email: email?,
        })
    });
    let revision = fields.optional_revision("revision");
    let window = match (starts_at, ends_at) {
        (Some(start), Some(end)) => match BookingWindow::new(start, end) {
            Ok(window) if end - start > chrono::Duration::days(MAX_BOOKING_DAYS) => {
                fields.error(
                    "ends_at",
                    format!("a booking may last at most {MAX_BOOKING_DAYS} days"),
                );
                Some(window)
            }
            Ok(window) => Some(window),
            Err(error) => {
                fields.error("ends_at", error.to_string());
                None
            }
        },
        _ => None,
    };
    Some(Change::Put {
        content: BookingContent {
            space_id: space_id?,
            window: window?,
            status: status?,
            patron: patron?,
        },
        revision,
    })
}

/// Reads `body` with `read`, refusing it with every field at fault at once.
pub(crate) fn read_body<'a, T>(
    body: &'a serde_json::Map<String, Value>,
    read: impl FnOnce(&mut Fields<'a>) -> Option<T>,
) -> Result<T, Problem> {
    let mut fields = Fields::new(body);
    let read = read(&mut fields);
    fields.finish()?;
    Ok(read.expect("a field that did not read has recorded its error"))
}

/// A plausibility check, not RFC 5322: one `@`, something on both sides, a dot in the domain.
fn parse_email(text: &str) -> Result<String, String> {
    let valid = text.len() <= MAX_EMAIL_LEN
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err("must be an email address such as ada@example.edu".to_owned())
    }
}

async fn put_booking(
    State(state): State<AppState>,
    Extension(source): Extension<Source>,
    Path(raw_id): Path<String>,
    TraceContext(trace): TraceContext,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<BookingView>), Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    let change = read_body(&body, read_put)?;
    store(&state, source, booking_id, change, trace).await
}

async fn cancel_booking(
    State(state): State<AppState>,
    Extension(source): Extension<Source>,
    Path(raw_id): Path<String>,
    TraceContext(trace): TraceContext,
) -> Result<(StatusCode, Json<BookingView>), Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    store(&state, source, booking_id, Change::Cancel, trace).await
}

async fn get_booking(
    State(state): State<AppState>,
    Extension(source): Extension<Source>,
    Path(raw_id): Path<String>,
) -> Result<Json<BookingView>, Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    load_view(&state.pool, &state.pins, &source, &booking_id)
        .await?
        .map(Json)
        // Another source's booking is not found either.
        .ok_or_else(|| Problem::not_found("no such booking"))
}

async fn store(
    state: &AppState,
    source: Source,
    booking_id: BookingId,
    change: Change,
    trace: Option<TraceParent>,
) -> Result<(StatusCode, Json<BookingView>), Problem> {
    let request = Request {
        source,
        booking_id,
        change,
        trace,
    };
    let view = state.writer.store(request).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_plausibility() {
        assert!(parse_email("ada@example.edu").is_ok());
        for bad in [
            "ada",
            "@example.edu",
            "ada@localhost",
            "a da@example.edu",
            "a@b@c.d",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
