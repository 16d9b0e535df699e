//! A booking as staff look it up (design §3.4): the booking, its PIN with the window in UTC
//! and lock-local time, the guest in RemoteLock's dashboard, and the PIN's history — and the
//! one thing staff do to it, reissuing the PIN.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, NaiveDateTime, Utc};
use lockbridge_domain::{
    BookingId, BookingStatus, BookingWindow, GuestId, LockId, Patron, PinState, PinValidity,
    SpaceId, TimeZone,
};
use lockbridge_http::{input::path_id, problem::Problem};
use lockbridge_work::provisioning;
use serde::Serialize;
use sqlx::PgExecutor;
use url::Url;

use crate::startup::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/bookings/{booking_id}", get(show))
        .route("/api/v1/bookings/{booking_id}/pin/reissue", post(reissue))
}

#[derive(Serialize)]
pub(crate) struct BookingView {
    pub booking_id: BookingId,
    source: String,
    pub space_id: SpaceId,
    pub space_name: String,
    pub location_name: String,
    pub time_zone: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: BookingStatus,
    pub patron: Patron,
    revision: Option<i64>,
    pub pin: PinView,
    /// The guest in RemoteLock's dashboard, once there is one.
    pub remotelock_url: Option<Url>,
    pub history: Vec<HistoryEntry>,
    /// What the door reported about this booking's guest, oldest first: the PIN confirmed or
    /// refused, the door opened with it, a wrong attempt (remotelock-api.md §3.8).
    pub activity: Vec<DoorActivity>,
}

#[derive(Serialize, sqlx::FromRow)]
pub(crate) struct DoorActivity {
    pub at: DateTime<Utc>,
    /// RemoteLock's event name: `unlocked`, `access_person_used`, `access_person_synced`, …
    pub kind: String,
    /// `succeeded` or `failed`.
    pub status: Option<String>,
    pub status_info: Option<String>,
    pub lock_id: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct PinView {
    pub state: PinState,
    /// Shown to staff only while it opens the door.
    pub pin: Option<String>,
    pub pin_version: i32,
    pub lock_id: Option<LockId>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// The window as the lock reads it: wall-clock time in its zone, no offset.
    local_valid_from: Option<NaiveDateTime>,
    local_valid_until: Option<NaiveDateTime>,
    pub lock_time_zone: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Serialize, sqlx::FromRow)]
pub(crate) struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub state: PinState,
    pub reason: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    booking_id: BookingId,
    source: String,
    space_id: SpaceId,
    space_name: String,
    location_name: String,
    time_zone: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: BookingStatus,
    patron_name: String,
    patron_email: String,
    revision: Option<i64>,
    linked: bool,
    pin_state: Option<PinState>,
    pin_sealed: Option<Vec<u8>>,
    synced_at: Option<DateTime<Utc>>,
    pin_sent_at: Option<DateTime<Utc>>,
    pin_version: Option<i32>,
    lock_id: Option<LockId>,
    guest_id: Option<GuestId>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    pin_time_zone: Option<String>,
    last_error: Option<String>,
}

async fn load(db: impl PgExecutor<'_>, booking_id: &BookingId) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.booking_id, b.source, b.space_id, s.name AS space_name, l.name AS location_name,
                l.time_zone, b.starts_at, b.ends_at, b.status, b.patron_name, b.patron_email,
                b.revision, (k.space_id IS NOT NULL) AS linked, p.state AS pin_state, p.pin_sealed, p.synced_at, p.pin_sent_at,
                p.pin_version, p.lock_id, p.guest_id, p.valid_from, p.valid_until,
                p.time_zone AS pin_time_zone, p.last_error
         FROM bookings b
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         LEFT JOIN lock_links k ON k.space_id = b.space_id
         LEFT JOIN booking_pins p ON p.booking_id = b.booking_id
         WHERE b.booking_id = $1",
    )
    .bind(booking_id)
    .fetch_optional(db)
    .await
}

fn unknown(booking_id: &BookingId) -> Problem {
    Problem::not_found(format!("no booking {booking_id}"))
}

async fn show(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<BookingView>, Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    Ok(Json(details(&state, &booking_id).await?))
}

/// The booking as staff see it; 404 when unknown.
pub(crate) async fn details(
    state: &AppState,
    booking_id: &BookingId,
) -> Result<BookingView, Problem> {
    let row = load(&state.pool, booking_id)
        .await?
        .ok_or_else(|| unknown(booking_id))?;
    let history = sqlx::query_as(
        "SELECT at, state, detail AS reason FROM pin_history WHERE booking_id = $1 ORDER BY at, id",
    )
    .bind(booking_id)
    .fetch_all(&state.pool)
    .await?;
    let activity = sqlx::query_as(
        "SELECT occurred_at AS at, kind, status, status_info, lock_id FROM remotelock_events
         WHERE booking_id = $1 ORDER BY occurred_at, created_at",
    )
    .bind(booking_id)
    .fetch_all(&state.pool)
    .await?;
    let pin_state = row
        .pin_state
        .unwrap_or_else(|| PinState::before_provisioning(row.linked, row.status));
    let zone = row
        .pin_time_zone
        .as_deref()
        .and_then(|name| name.parse::<TimeZone>().ok());
    let local = match (row.valid_from, row.valid_until, zone) {
        (Some(valid_from), Some(valid_until), Some(zone)) => Some(
            PinValidity {
                valid_from,
                valid_until,
            }
            .in_zone(zone),
        ),
        _ => None,
    };
    let remotelock_url = row
        .guest_id
        .as_ref()
        .and_then(|guest| guest_url(&state.dashboard_url, guest));
    Ok(BookingView {
        booking_id: row.booking_id,
        source: row.source,
        space_id: row.space_id,
        space_name: row.space_name,
        location_name: row.location_name,
        time_zone: row.time_zone,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        status: row.status,
        patron: Patron {
            name: row.patron_name,
            email: row.patron_email,
        },
        revision: row.revision,
        pin: PinView {
            state: pin_state.shown(row.synced_at, row.pin_sent_at),
            pin: match row.pin_sealed {
                Some(sealed) if pin_state == PinState::Issued => {
                    Some(state.pins.open(&sealed)?.expose().to_owned())
                }
                _ => None,
            },
            pin_version: row.pin_version.unwrap_or(0),
            lock_id: row.lock_id,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            local_valid_from: local.as_ref().map(|w| w.starts_at),
            local_valid_until: local.as_ref().map(|w| w.ends_at),
            lock_time_zone: zone.map(|z| z.name().to_owned()),
            last_error: row.last_error,
        },
        remotelock_url,
        history,
        activity,
    })
}

/// RemoteLock's dashboard shows a guest at `access-guests/<id>` (inferred from the dashboard,
/// not documented: docs/remotelock.md).
fn guest_url(dashboard: &Url, guest: &GuestId) -> Option<Url> {
    dashboard.join(&format!("access-guests/{guest}")).ok()
}

#[derive(Serialize)]
pub(crate) struct Reissuing {
    booking_id: BookingId,
    /// The version the new PIN replaces; the new one is announced as this + 1.
    pub replaces_pin_version: i32,
}

/// Asks the provisioner for a new PIN on the booking's guest; it publishes `pin.issued` with
/// `reason: reissued` and the patron gets a "your new PIN" email. Only a PIN that works can be
/// reissued: one being set up, failed, revoked or whose window has passed cannot.
async fn reissue(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<(StatusCode, Json<Reissuing>), Problem> {
    let booking_id = path_id("booking_id", raw_id, BookingId::parse)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(reissue_pin(&state.pool, booking_id).await?),
    ))
}

/// Asks for a new PIN on the booking's guest, if it has one that works.
pub(crate) async fn reissue_pin(
    pool: &sqlx::PgPool,
    booking_id: BookingId,
) -> Result<Reissuing, Problem> {
    let mut tx = pool.begin().await?;
    let row = load(&mut *tx, &booking_id)
        .await?
        .ok_or_else(|| unknown(&booking_id))?;
    let live = row.pin_state == Some(PinState::Issued)
        && row.guest_id.is_some()
        && row.valid_until.is_some_and(|until| until > Utc::now());
    if !live {
        let state = row.pin_state.map_or("none yet", PinState::as_str);
        return Err(Problem::conflict(
            "pin",
            format!("booking {booking_id} has no live PIN to reissue (its PIN state: {state})"),
        ));
    }
    if !row.linked {
        return Err(Problem::conflict(
            "pin",
            format!(
                "space {} is no longer linked to a lock: lockbridge does not change guests of \
                 unlinked spaces",
                row.space_id
            ),
        ));
    }
    let window = BookingWindow::new(row.starts_at, row.ends_at)
        .expect("the schema checks ends_at > starts_at");
    provisioning::request_new_pin(&mut tx, &booking_id, &window).await?;
    tx.commit().await?;
    tracing::info!(%booking_id, "staff asked for a new PIN");
    Ok(Reissuing {
        booking_id,
        replaces_pin_version: row.pin_version.unwrap_or(0),
    })
}
