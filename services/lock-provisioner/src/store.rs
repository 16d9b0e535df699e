//! The provisioner's view of the database: the booking as intake stored it (read only) and
//! the booking's PIN record, which this service owns.

use chrono::{DateTime, Utc};
use lockbridge_domain::{
    AccessId, BookingId, BookingStatus, BookingWindow, GuestId, LockId, Patron, Pin, PinState,
    PinValidity, SpaceId, TimeZone,
};
use sqlx::{PgExecutor, Postgres, Transaction, types::Json};
use uuid::Uuid;

/// A booking with what provisioning needs to know about its space.
pub(crate) struct Booking {
    pub booking_id: BookingId,
    pub correlation_id: Uuid,
    pub status: BookingStatus,
    pub window: BookingWindow,
    pub patron: Patron,
    pub space_id: SpaceId,
    pub space_name: String,
    pub location_name: String,
    pub location_zone: TimeZone,
    /// The lock linked to the space, if any.
    pub lock: Option<LinkedLock>,
}

#[derive(Clone)]
pub(crate) struct LinkedLock {
    pub id: LockId,
    pub name: String,
}

#[derive(sqlx::FromRow)]
struct BookingRow {
    booking_id: BookingId,
    correlation_id: Uuid,
    status: BookingStatus,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    patron_name: String,
    patron_email: String,
    space_id: SpaceId,
    space_name: String,
    location_name: String,
    time_zone: String,
    lock_id: Option<LockId>,
    lock_name: Option<String>,
    pin: Option<Json<PinRecord>>,
}

/// The booking and its PIN record (`None` before the first run), in one statement.
pub(crate) async fn booking(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
) -> Result<Option<(Booking, Option<PinRecord>)>, sqlx::Error> {
    let row: Option<BookingRow> = sqlx::query_as(
        "SELECT b.booking_id, b.correlation_id, b.status, b.starts_at, b.ends_at, b.patron_name,
                b.patron_email, b.space_id, s.name AS space_name, l.name AS location_name, l.time_zone,
                k.lock_id, k.lock_name,
                (SELECT to_jsonb(p) FROM (
                     SELECT state, space_id, lock_id, guest_name, create_requested_at, guest_id,
                            pin, pin_version, valid_from, valid_until, patron_name, patron_email,
                            reissue_requested_at
                     FROM booking_pins WHERE booking_id = b.booking_id) p) AS pin
         FROM bookings b
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         LEFT JOIN lock_links k ON k.space_id = b.space_id
         WHERE b.booking_id = $1",
    )
    .bind(booking_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let booking = Booking {
            booking_id: row.booking_id,
            correlation_id: row.correlation_id,
            status: row.status,
            window: BookingWindow::new(row.starts_at, row.ends_at)
                .expect("the schema checks ends_at > starts_at"),
            patron: Patron {
                name: row.patron_name,
                email: row.patron_email,
            },
            space_id: row.space_id,
            space_name: row.space_name,
            location_name: row.location_name,
            location_zone: TimeZone::from_stored(&row.time_zone),
            lock: row
                .lock_id
                .zip(row.lock_name)
                .map(|(id, name)| LinkedLock { id, name }),
        };
        (booking, row.pin.map(|Json(record)| record))
    }))
}

/// What lockbridge knows it did in RemoteLock for one booking. No `Debug`: it holds the PIN.
#[derive(serde::Deserialize)]
pub(crate) struct PinRecord {
    pub state: PinState,
    /// The space the guest was made for: a booking moved elsewhere must not keep its door.
    pub space_id: Option<SpaceId>,
    pub lock_id: Option<LockId>,
    pub guest_name: Option<String>,
    pub create_requested_at: Option<DateTime<Utc>>,
    pub guest_id: Option<GuestId>,
    pub pin: Option<String>,
    pub pin_version: i32,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Whom the PIN email was last addressed to (`None` before any).
    pub patron_name: Option<String>,
    pub patron_email: Option<String>,
    pub reissue_requested_at: Option<DateTime<Utc>>,
}

impl PinRecord {
    pub fn pin(&self) -> Option<Pin> {
        self.pin.clone().and_then(|pin| Pin::parse(pin).ok())
    }
}

/// Sets the booking's PIN state (creating its record if needed) and notes why in its history.
pub(crate) async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    booking: &Booking,
    state: PinState,
    detail: &str,
) -> Result<(), sqlx::Error> {
    // One statement: most bookings (no lock) get nothing else from the provisioner.
    sqlx::query(
        "WITH pin AS (
             INSERT INTO booking_pins (booking_id, correlation_id, state, last_error)
             VALUES ($1, $2, $3, NULL)
             ON CONFLICT (booking_id) DO UPDATE SET state = EXCLUDED.state, last_error = NULL,
                 updated_at = now()
             RETURNING booking_id)
         INSERT INTO pin_history (booking_id, state, detail) SELECT booking_id, $3, $4 FROM pin",
    )
    .bind(&booking.booking_id)
    .bind(booking.correlation_id)
    .bind(state)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn history(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: &BookingId,
    state: PinState,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO pin_history (booking_id, state, detail) VALUES ($1, $2, $3)")
        .bind(booking_id)
        .bind(state)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Written BEFORE the guest is created in RemoteLock: if the answer is lost, the next attempt
/// looks for a guest with this name and PIN instead of making a second one.
pub(crate) async fn record_intent(
    db: impl PgExecutor<'_>,
    booking: &Booking,
    lock: &LockId,
    guest_name: &str,
    pin: &Pin,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, space_id, lock_id, guest_name, pin,
                                   create_requested_at)
         VALUES ($1, $2, 'pending', $6, $3, $4, $5, now())
         ON CONFLICT (booking_id) DO UPDATE SET state = 'pending', space_id = $6, lock_id = $3, guest_name = $4,
             pin = $5, create_requested_at = now(), guest_id = NULL, access_id = NULL, updated_at = now()",
    )
    .bind(&booking.booking_id)
    .bind(booking.correlation_id)
    .bind(lock)
    .bind(guest_name)
    .bind(pin.expose())
    .bind(&booking.space_id)
    .execute(db)
    .await?;
    Ok(())
}

pub(crate) async fn record_guest(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
    guest: &GuestId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE booking_pins SET guest_id = $2, updated_at = now() WHERE booking_id = $1")
        .bind(booking_id)
        .bind(guest)
        .execute(db)
        .await?;
    Ok(())
}

pub(crate) async fn record_access(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
    lock: &LockId,
    access: &AccessId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE booking_pins SET lock_id = $2, access_id = $3, updated_at = now() WHERE booking_id = $1")
        .bind(booking_id)
        .bind(lock)
        .bind(access)
        .execute(db)
        .await?;
    Ok(())
}

/// Written BEFORE the guest's PIN is changed in RemoteLock, and the record marked unsettled:
/// if the answer is lost, the next run sets this PIN again rather than announce a PIN the
/// guest may not have.
pub(crate) async fn record_pin(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
    pin: &Pin,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE booking_pins SET pin = $2, state = 'pending', updated_at = now() WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(pin.expose())
    .execute(db)
    .await?;
    Ok(())
}

/// PINs of other bookings that work, or are being set up, on `lock` now or later: a new PIN
/// avoids them, since RemoteLock may refuse a PIN already used on the device.
/// Which of `candidates` are live on `lock` for a booking other than `except`.
pub(crate) async fn live_on_lock(
    db: impl PgExecutor<'_>,
    lock: &LockId,
    except: &BookingId,
    candidates: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT pin FROM booking_pins
         WHERE lock_id = $1 AND pin = ANY($3) AND booking_id <> $2 AND pin IS NOT NULL
           AND state IN ('issued', 'pending') AND (valid_until IS NULL OR valid_until > now())",
    )
    .bind(lock)
    .bind(except)
    .bind(candidates)
    .fetch_all(db)
    .await
}

/// Locks the booking's row until the transaction ends and says whether it is still as `read`:
/// intake cannot change it between this check and the commit, so a booking cancelled while
/// its guest was being made never has its PIN announced.
pub(crate) async fn still_as_read(
    tx: &mut Transaction<'_, Postgres>,
    read: &Booking,
) -> Result<bool, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Now {
        status: BookingStatus,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        space_id: SpaceId,
        patron_name: String,
        patron_email: String,
    }
    let now: Option<Now> = sqlx::query_as(
        "SELECT status, starts_at, ends_at, space_id, patron_name, patron_email
         FROM bookings WHERE booking_id = $1 FOR SHARE",
    )
    .bind(&read.booking_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(now.is_some_and(|now| {
        now.status == read.status
            && now.starts_at == read.window.starts_at()
            && now.ends_at == read.window.ends_at()
            && now.space_id == read.space_id
            && now.patron_name == read.patron.name
            && now.patron_email == read.patron.email
    }))
}

/// The PIN works: record its window, version, zone and the patron it is announced to.
pub(crate) async fn mark_issued(
    tx: &mut Transaction<'_, Postgres>,
    booking: &Booking,
    validity: &PinValidity,
    zone: TimeZone,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE booking_pins SET state = 'issued', pin_version = pin_version + 1, space_id = $2,
             valid_from = $3, valid_until = $4, time_zone = $5, patron_name = $6, patron_email = $7,
             last_error = NULL, create_requested_at = NULL, reissue_requested_at = NULL,
             updated_at = now()
         WHERE booking_id = $1 RETURNING pin_version",
    )
    .bind(&booking.booking_id)
    .bind(&booking.space_id)
    .bind(validity.valid_from)
    .bind(validity.valid_until)
    .bind(zone.name())
    .bind(&booking.patron.name)
    .bind(&booking.patron.email)
    .fetch_one(&mut **tx)
    .await
}

/// A failure that does not change what the door does (a revocation still being retried):
/// kept on the record and in its history, the state left as it is.
pub(crate) async fn note_error(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: &BookingId,
    state: PinState,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE booking_pins SET last_error = $2, updated_at = now() WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    history(tx, booking_id, state, error).await
}

pub(crate) async fn mark_failed(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: &BookingId,
    correlation_id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, last_error) VALUES ($1, $2, 'failed', $3)
         ON CONFLICT (booking_id) DO UPDATE SET state = 'failed', last_error = $3, updated_at = now()",
    )
    .bind(booking_id)
    .bind(correlation_id)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    history(tx, booking_id, PinState::Failed, error).await
}
