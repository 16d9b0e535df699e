//! Bookings: validated, ordered by `revision`, stored with their event in one transaction.

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::put,
};
use chrono::{DateTime, Utc};
use lockbridge_domain::{
    BookingId, BookingStatus, BookingWindow, LocationId, Patron, PinState, SpaceId, TimeZone,
    events::{BookingData, Envelope, EventType},
};
use lockbridge_http::{
    input::{Fields, JsonObject, MAX_NAME_LEN, path_id},
    problem::Problem,
};
use lockbridge_runtime::{outbox, wakeup::Channel};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgExecutor, Postgres, Transaction, types::Json as Jsonb};
use uuid::Uuid;

use crate::{auth::Source, startup::AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/bookings/{booking_id}",
        put(put_booking).delete(cancel_booking).get(get_booking),
    )
}

/// A booking is at most this long; anything longer is almost surely a unit mistake upstream.
const MAX_BOOKING_DAYS: i64 = 31;
const MAX_EMAIL_LEN: usize = 254;

/// What the source says about a booking: the part whose change is worth an event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BookingContent {
    space_id: SpaceId,
    window: BookingWindow,
    status: BookingStatus,
    patron: Patron,
}

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

/// The booking as stored, read as one JSON value so that "no booking yet" is one `None`.
#[derive(serde::Deserialize)]
struct StoredRow {
    source: String,
    space_id: SpaceId,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: BookingStatus,
    patron_name: String,
    patron_email: String,
    revision: Option<i64>,
    correlation_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl StoredRow {
    fn content(&self) -> BookingContent {
        BookingContent {
            space_id: self.space_id.clone(),
            window: BookingWindow::new(self.starts_at, self.ends_at)
                .expect("the schema checks ends_at > starts_at"),
            status: self.status,
            patron: Patron {
                name: self.patron_name.clone(),
                email: self.patron_email.clone(),
            },
        }
    }
}

/// The event a change deserves, if any. Tentative bookings get no PIN, so they say nothing
/// until confirmed; a confirmed booking announces every real change.
fn event_for(before: Option<&BookingContent>, after: &BookingContent) -> Option<EventType> {
    use BookingStatus::{Cancelled, Confirmed, Tentative};
    match (before.map(|b| b.status), after.status) {
        (None | Some(Tentative | Cancelled), Confirmed) => Some(EventType::BookingConfirmed),
        (Some(Confirmed), Confirmed) => {
            (before != Some(after)).then_some(EventType::BookingChanged)
        }
        // Back to awaiting approval: its PIN must stop working until it is confirmed again.
        (Some(Confirmed), Tentative) => Some(EventType::BookingChanged),
        (Some(Confirmed | Tentative), Cancelled) => Some(EventType::BookingCancelled),
        _ => None,
    }
}

/// Where a space is: its location and that location's zone, and whether it has a lock.
#[derive(serde::Deserialize)]
struct SpacePlace {
    location_id: LocationId,
    time_zone: String,
    linked: bool,
}

/// Everything a write reads under the booking's lock.
#[derive(sqlx::FromRow)]
struct Current {
    stored: Option<Jsonb<StoredRow>>,
    /// Of the space the request names, or for a cancel the stored one; `None`: no such space.
    place: Option<Jsonb<SpacePlace>>,
    #[sqlx(flatten)]
    pin: PinRow,
}

/// What a source asks of a booking.
pub(crate) enum Change {
    Put {
        content: BookingContent,
        revision: Option<i64>,
    },
    /// A cancel carries no revision: it keeps the stored one and is never stale.
    Cancel,
}

/// Why a change was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// Refused as the HTTP API answers it: stale, another source's, about nothing known.
    #[error("{}", .0.detail)]
    Refused(Problem),
    /// Over HTTP a 503 to retry; the AMQP consumer retries it unless it would fail again.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
}

impl From<Problem> for ApplyError {
    fn from(problem: Problem) -> Self {
        Self::Refused(problem)
    }
}

impl From<ApplyError> for Problem {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::Refused(problem) => problem,
            ApplyError::Database(error) => error.into(),
        }
    }
}

/// A change under way: the booking's transaction, begun holding its lock, which serializes
/// the writers of one booking (two first PUTs racing to insert it included), and what the
/// write reads. Three round trips, where a statement each took six: under load a request's
/// time is mostly its round trips. Dropped without [`Locked::apply`], it rolls back.
pub(crate) struct Locked {
    tx: Transaction<'static, Postgres>,
    current: Current,
    booking_id: BookingId,
    change: Change,
}

impl Locked {
    pub(crate) async fn begin(
        pool: &sqlx::PgPool,
        booking_id: BookingId,
        change: Change,
    ) -> Result<Self, sqlx::Error> {
        let space_id = match &change {
            Change::Put { content, .. } => Some(&content.space_id),
            Change::Cancel => None,
        };
        // The lock is taken by the statement that begins the transaction. It is a simple query,
        // so the id is written into it: a BookingId holds only ASCII letters, digits and `._:-`,
        // nothing that can end a string literal.
        let mut tx = pool
            .begin_with(format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('{}', 0))",
                booking_id.as_str()
            ))
            .await?;
        let current = sqlx::query_as(
            "WITH stored AS (
                 SELECT source, space_id, starts_at, ends_at, status, patron_name, patron_email,
                        revision, correlation_id, created_at, updated_at
                 FROM bookings WHERE booking_id = $1),
             place AS (
                 SELECT l.location_id, l.time_zone,
                        EXISTS (SELECT 1 FROM lock_links k WHERE k.space_id = s.space_id) AS linked
                 FROM spaces s JOIN categories c USING (category_id) JOIN locations l USING (location_id)
                 WHERE s.space_id = coalesce($2, (SELECT space_id FROM stored)))
             SELECT (SELECT to_jsonb(stored) FROM stored) AS stored,
                    (SELECT to_jsonb(place) FROM place) AS place,
                    p.state AS pin_state, p.pin, p.valid_from, p.valid_until
             FROM (SELECT 1) AS one LEFT JOIN booking_pins p ON p.booking_id = $1",
        )
        .bind(&booking_id)
        .bind(space_id)
        .fetch_one(&mut *tx)
        .await?;
        Ok(Self {
            tx,
            current,
            booking_id,
            change,
        })
    }

    /// The transaction, for what must commit or roll back with the change.
    pub(crate) fn transaction(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }

    /// Orders the change against the stored booking, stores it and its event if it deserves
    /// one, and commits.
    pub(crate) async fn apply(self, source: &Source) -> Result<BookingView, ApplyError> {
        let Self {
            mut tx,
            current,
            booking_id,
            change,
        } = self;
        // Everything below reads the booking as it is under the lock, so a cancel racing an
        // update cancels the updated booking.
        let stored = current.stored.map(|Jsonb(stored)| stored);
        let (content, revision) = match change {
            Change::Put { content, revision } => {
                if let Some(stored) = &stored {
                    check_order(source, stored, &content, revision)?;
                }
                (content, revision)
            }
            Change::Cancel => match stored.as_ref().filter(|s| s.source == source.0) {
                Some(stored) => (
                    BookingContent {
                        status: BookingStatus::Cancelled,
                        ..stored.content()
                    },
                    None,
                ),
                None => return Err(Problem::not_found("no such booking").into()),
            },
        };
        let Some(Jsonb(place)) = current.place else {
            return Err(Problem::invalid_field(
                "space_id",
                "no such space: create it first with PUT /v1/spaces/{id}",
            )
            .into());
        };
        let before = stored.as_ref().map(StoredRow::content);
        let revision = revision.or(stored.as_ref().and_then(|s| s.revision));
        let unchanged = before.as_ref() == Some(&content)
            && stored.as_ref().and_then(|s| s.revision) == revision;
        let mut announced = false;
        let (created_at, updated_at) = match &stored {
            Some(stored) if unchanged => (stored.created_at, stored.updated_at),
            _ => {
                let correlation_id = stored
                    .as_ref()
                    .map_or_else(Uuid::now_v7, |s| s.correlation_id);
                let written = sqlx::query_as(
                    "INSERT INTO bookings (booking_id, source, space_id, starts_at, ends_at, status,
                                           patron_name, patron_email, revision, correlation_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (booking_id) DO UPDATE SET space_id = EXCLUDED.space_id,
                         starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, status = EXCLUDED.status,
                         patron_name = EXCLUDED.patron_name, patron_email = EXCLUDED.patron_email,
                         revision = EXCLUDED.revision, updated_at = now()
                     RETURNING created_at, updated_at",
                )
                .bind(&booking_id)
                .bind(&source.0)
                .bind(&content.space_id)
                .bind(content.window.starts_at())
                .bind(content.window.ends_at())
                .bind(content.status)
                .bind(&content.patron.name)
                .bind(&content.patron.email)
                .bind(revision)
                .bind(correlation_id)
                .fetch_one(&mut *tx)
                .await?;
                if let Some(event_type) = event_for(before.as_ref(), &content) {
                    let data = BookingData {
                        booking_id: booking_id.clone(),
                        source: source.0.clone(),
                        space_id: content.space_id.clone(),
                        location_id: place.location_id.clone(),
                        starts_at: content.window.starts_at(),
                        ends_at: content.window.ends_at(),
                        status: content.status,
                        patron: content.patron.clone(),
                        revision,
                        time_zone: TimeZone::from_stored(&place.time_zone),
                    };
                    let event = Envelope::new(event_type, correlation_id, data);
                    outbox::enqueue(&mut tx, crate::PRODUCER, &event).await?;
                    announced = true;
                    tracing::info!(booking_id = %booking_id, event_type = event_type.as_str(), event_id = %event.event_id, "booking stored");
                }
                written
            }
        };
        tx.commit().await?;
        if announced {
            Channel::outbox(crate::PRODUCER).ring();
        }
        Ok(ViewRow {
            booking_id,
            space_id: content.space_id,
            starts_at: content.window.starts_at(),
            ends_at: content.window.ends_at(),
            status: content.status,
            patron_name: content.patron.name,
            patron_email: content.patron.email,
            revision,
            time_zone: place.time_zone,
            created_at,
            updated_at,
            linked: place.linked,
            pin: current.pin,
        }
        .into())
    }
}

fn check_order(
    source: &Source,
    stored: &StoredRow,
    content: &BookingContent,
    revision: Option<i64>,
) -> Result<(), Problem> {
    if stored.source != source.0 {
        return Err(Problem::conflict(
            "booking_id",
            "this booking id belongs to another source",
        ));
    }
    match (stored.revision, revision) {
        (Some(have), Some(got)) if got < have => Err(Problem::conflict(
            "revision",
            format!("revision {got} is older than the stored revision {have}; nothing was changed"),
        )),
        (Some(have), Some(got)) if got == have && stored.content() != *content => {
            Err(Problem::conflict(
                "revision",
                format!(
                    "revision {got} is already stored with different content; send a higher revision"
                ),
            ))
        }
        _ => Ok(()),
    }
}

async fn put_booking(
    State(state): State<AppState>,
    Extension(source): Extension<Source>,
    Path(raw_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<BookingView>), Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    let change = read_body(&body, read_put)?;
    let view = Locked::begin(&state.pool, booking_id, change)
        .await?
        .apply(&source)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

async fn cancel_booking(
    State(state): State<AppState>,
    Extension(source): Extension<Source>,
    Path(raw_id): Path<String>,
) -> Result<(StatusCode, Json<BookingView>), Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    let view = Locked::begin(&state.pool, booking_id, Change::Cancel)
        .await?
        .apply(&source)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

async fn get_booking(
    State(state): State<AppState>,
    Extension(source): Extension<Source>,
    Path(raw_id): Path<String>,
) -> Result<Json<BookingView>, Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    load_view(&state.pool, &source, &booking_id)
        .await?
        .map(Json)
        // Another source's booking is not found either.
        .ok_or_else(|| Problem::not_found("no such booking"))
}

#[derive(Debug, Serialize)]
pub(crate) struct PinView {
    state: PinState,
    pin: Option<String>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct BookingView {
    booking_id: BookingId,
    space_id: SpaceId,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: BookingStatus,
    patron: Patron,
    revision: Option<i64>,
    time_zone: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    pin: PinView,
}

#[derive(sqlx::FromRow)]
struct ViewRow {
    booking_id: BookingId,
    space_id: SpaceId,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: BookingStatus,
    patron_name: String,
    patron_email: String,
    revision: Option<i64>,
    time_zone: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    linked: bool,
    #[sqlx(flatten)]
    pin: PinRow,
}

/// The booking's PIN record, if the provisioner has written one.
#[derive(sqlx::FromRow)]
struct PinRow {
    pin_state: Option<PinState>,
    pin: Option<String>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
}

impl From<ViewRow> for BookingView {
    fn from(row: ViewRow) -> Self {
        let state = row
            .pin
            .pin_state
            .unwrap_or_else(|| PinState::before_provisioning(row.linked, row.status));
        let issued = state == PinState::Issued;
        BookingView {
            booking_id: row.booking_id,
            space_id: row.space_id,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            status: row.status,
            patron: Patron {
                name: row.patron_name,
                email: row.patron_email,
            },
            revision: row.revision,
            time_zone: row.time_zone,
            created_at: row.created_at,
            updated_at: row.updated_at,
            pin: PinView {
                state,
                pin: row.pin.pin.filter(|_| issued),
                valid_from: row.pin.valid_from,
                valid_until: row.pin.valid_until,
            },
        }
    }
}

async fn load_view(
    db: impl PgExecutor<'_>,
    source: &Source,
    booking_id: &BookingId,
) -> Result<Option<BookingView>, sqlx::Error> {
    let row: Option<ViewRow> = sqlx::query_as(
        "SELECT b.booking_id, b.space_id, b.starts_at, b.ends_at, b.status, b.patron_name,
                b.patron_email, b.revision, l.time_zone, b.created_at, b.updated_at,
                (k.space_id IS NOT NULL) AS linked,
                p.state AS pin_state, p.pin, p.valid_from, p.valid_until
         FROM bookings b
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         LEFT JOIN lock_links k ON k.space_id = b.space_id
         LEFT JOIN booking_pins p ON p.booking_id = b.booking_id
         WHERE b.booking_id = $1 AND b.source = $2",
    )
    .bind(booking_id)
    .bind(&source.0)
    .fetch_optional(db)
    .await?;
    Ok(row.map(BookingView::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(status: BookingStatus, hour: u32) -> BookingContent {
        let start = DateTime::parse_from_rfc3339(&format!("2026-12-01T{hour:02}:00:00Z"))
            .unwrap()
            .with_timezone(&Utc);
        BookingContent {
            space_id: SpaceId::parse("sp-1").unwrap(),
            window: BookingWindow::new(start, start + chrono::Duration::hours(1)).unwrap(),
            status,
            patron: Patron {
                name: "Ada".into(),
                email: "ada@example.edu".into(),
            },
        }
    }

    #[test]
    fn events_follow_status_and_real_changes() {
        use BookingStatus::*;
        use EventType::*;
        // (stored status and start hour, if any; the PUT's; the event it emits)
        let cases = [
            (None, (Tentative, 9), None),
            (None, (Confirmed, 9), Some(BookingConfirmed)),
            (Some((Tentative, 9)), (Confirmed, 9), Some(BookingConfirmed)),
            (Some((Confirmed, 9)), (Confirmed, 9), None),
            (Some((Confirmed, 9)), (Confirmed, 10), Some(BookingChanged)),
            (Some((Confirmed, 9)), (Tentative, 9), Some(BookingChanged)),
            (Some((Confirmed, 9)), (Cancelled, 9), Some(BookingCancelled)),
            (Some((Tentative, 9)), (Tentative, 10), None),
            (Some((Cancelled, 9)), (Cancelled, 9), None),
            (Some((Cancelled, 9)), (Confirmed, 9), Some(BookingConfirmed)),
        ];
        for (before, (status, hour), expected) in cases {
            let before = before.map(|(status, hour)| content(status, hour));
            let after = content(status, hour);
            assert_eq!(
                event_for(before.as_ref(), &after),
                expected,
                "{before:?} -> {after:?}"
            );
        }
    }

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
