//! The provisioner's view of the database: the booking as intake stored it (read only) and
//! the booking's PIN record, which this service owns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lockbridge_domain::{
    AccessId, BookingId, BookingStatus, BookingWindow, GuestId, LockId, Patron, Pin, PinState,
    PinValidity, SpaceId, TimeZone, TraceParent,
};
use lockbridge_sealing::{
    SealError,
    pins::{PinSealer, SealedPin},
};
use lockbridge_work::failures::{self, FailureKind};
use sqlx::{PgExecutor, Postgres, Transaction, types::Json};
use uuid::Uuid;

/// A booking with what provisioning needs to know about its space.
pub(crate) struct Booking {
    pub booking_id: BookingId,
    pub correlation_id: Uuid,
    /// The trace context of the upstream request that last changed it, continued by the PIN
    /// events it causes.
    pub traceparent: Option<TraceParent>,
    pub status: BookingStatus,
    pub window: BookingWindow,
    pub patron: Patron,
    pub space_id: SpaceId,
    pub space_name: String,
    pub location_name: String,
    pub location_zone: TimeZone,
    /// The lock linked to the space, if any.
    pub lock: Option<LinkedLock>,
    /// When intake first stored it: the start of its intake → PIN time.
    pub stored_at: DateTime<Utc>,
    /// What staff set on the Settings page for this booking's space.
    pub settings: StaffSettings,
}

/// The most specific lead time and grace staff set for a space, and the PIN length; `None`
/// where nothing is set, and the configuration applies.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StaffSettings {
    pub lead_time: Option<Duration>,
    pub grace: Option<Duration>,
    pub pin_digits: Option<usize>,
}

impl Booking {
    /// When the PIN works: the booking's window widened by the lead time and grace staff set
    /// for its space, or else by those configured.
    pub fn validity(&self, lead_time: Duration, grace: Duration) -> PinValidity {
        self.window.pin_validity(
            self.settings.lead_time.unwrap_or(lead_time),
            self.settings.grace.unwrap_or(grace),
        )
    }
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
    traceparent: Option<String>,
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
    created_at: DateTime<Utc>,
    pin: Option<Json<PinRecord>>,
    lead_time_secs: Option<i32>,
    grace_secs: Option<i32>,
    pin_digits: Option<i16>,
}

/// The booking and its PIN record (`None` before the first run), in one statement.
pub(crate) async fn booking(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
) -> Result<Option<(Booking, Option<PinRecord>)>, sqlx::Error> {
    Ok(bookings(db, std::slice::from_ref(booking_id)).await?.pop())
}

/// Each stored booking of `booking_ids` with its PIN record, in one statement; a booking not
/// stored (yet) is left out.
pub(crate) async fn bookings(
    db: impl PgExecutor<'_>,
    booking_ids: &[BookingId],
) -> Result<Vec<(Booking, Option<PinRecord>)>, sqlx::Error> {
    let rows: Vec<BookingRow> = sqlx::query_as(
        "SELECT b.booking_id, b.correlation_id, b.traceparent, b.status, b.starts_at, b.ends_at, b.patron_name,
                b.patron_email, b.space_id, s.name AS space_name, l.name AS location_name, l.time_zone,
                k.lock_id, k.lock_name, b.created_at, w.lead_time_secs, w.grace_secs, w.pin_digits,
                (SELECT to_jsonb(p) FROM (
                     SELECT state, space_id, lock_id, guest_name, create_requested_at, guest_id,
                            encode(pin_sealed, 'base64') AS pin_sealed, pin_version, valid_from, valid_until, patron_name, patron_email,
                            reissue_requested_at, resync_requested_at, drift_found_at
                     FROM booking_pins WHERE booking_id = b.booking_id) p) AS pin
         FROM bookings b
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         LEFT JOIN lock_links k ON k.space_id = b.space_id
         LEFT JOIN space_window_settings w ON w.space_id = b.space_id
         WHERE b.booking_id = ANY($1)",
    )
    // Planned anew each time: a plan cached while the table was small scans all of it.
    .persistent(false)
    .bind(booking_ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let booking = Booking {
                booking_id: row.booking_id,
                correlation_id: row.correlation_id,
                traceparent: row.traceparent.and_then(|t| TraceParent::parse(&t).ok()),
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
                stored_at: row.created_at,
                settings: StaffSettings {
                    lead_time: seconds(row.lead_time_secs),
                    grace: seconds(row.grace_secs),
                    pin_digits: row.pin_digits.and_then(|d| usize::try_from(d).ok()),
                },
            };
            (booking, row.pin.map(|Json(record)| record))
        })
        .collect())
}

/// The schema keeps stored seconds between 0 and a day.
fn seconds(secs: Option<i32>) -> Option<Duration> {
    secs.and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
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
    /// The PIN sealed under `pins.encryption_key`, in base64 (JSON has no bytes).
    pub pin_sealed: Option<String>,
    pub pin_version: i32,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Whom the PIN email was last addressed to (`None` before any).
    pub patron_name: Option<String>,
    pub patron_email: Option<String>,
    pub reissue_requested_at: Option<DateTime<Utc>>,
    /// A lock could not take the PIN (not a conflict): send it to the lock again.
    pub resync_requested_at: Option<DateTime<Utc>>,
    /// The drift pass found RemoteLock changed behind lockbridge's back: the run looks at
    /// the guest instead of trusting this record (drift/).
    pub drift_found_at: Option<DateTime<Utc>>,
}

impl PinRecord {
    /// The PIN, opened; only the runs that talk to RemoteLock need it.
    pub fn pin(&self, sealer: &PinSealer) -> Result<Option<Pin>, SealError> {
        self.pin_sealed
            .as_deref()
            .map(|encoded| sealer.open_base64(encoded))
            .transpose()
    }
}

/// Sets the booking's PIN state (creating its record if needed) and notes why in its history.
pub(crate) async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    booking: &Booking,
    state: PinState,
    detail: &str,
) -> Result<(), sqlx::Error> {
    set_states(tx, &[(booking, state, detail)]).await
}

/// [`set_state`] for many bookings in one statement: most bookings (no lock) get nothing else
/// from the provisioner.
pub(crate) async fn set_states(
    tx: &mut Transaction<'_, Postgres>,
    states: &[(&Booking, PinState, &str)],
) -> Result<(), sqlx::Error> {
    if states.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH given AS (
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::pin_state[], $4::text[])
                 AS g (booking_id, correlation_id, state, detail)),
         pin AS (
             INSERT INTO booking_pins (booking_id, correlation_id, state, last_error)
             SELECT booking_id, correlation_id, state, NULL FROM given
             ON CONFLICT (booking_id) DO UPDATE SET state = EXCLUDED.state, last_error = NULL,
                 drift_found_at = NULL, updated_at = now()
             RETURNING booking_id)
         INSERT INTO pin_history (booking_id, state, detail)
         SELECT g.booking_id, g.state, g.detail FROM given g JOIN pin USING (booking_id)",
    )
    .bind(
        states
            .iter()
            .map(|(b, _, _)| b.booking_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        states
            .iter()
            .map(|(b, _, _)| b.correlation_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        states
            .iter()
            .map(|(_, state, _)| *state)
            .collect::<Vec<_>>(),
    )
    .bind(
        states
            .iter()
            .map(|(_, _, detail)| *detail)
            .collect::<Vec<_>>(),
    )
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
    pin: &SealedPin,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, space_id, lock_id, guest_name,
                                   pin_sealed, pin_digest, create_requested_at, pin_sent_at)
         VALUES ($1, $2, 'pending', $6, $3, $4, $5, $7, now(), now())
         ON CONFLICT (booking_id) DO UPDATE SET state = 'pending', space_id = $6, lock_id = $3, guest_name = $4,
             pin_sealed = $5, pin_digest = $7, create_requested_at = now(), guest_id = NULL,
             access_id = NULL, pin_sent_at = now(), updated_at = now()",
    )
    .bind(&booking.booking_id)
    .bind(booking.correlation_id)
    .bind(lock)
    .bind(guest_name)
    .bind(&pin.sealed)
    .bind(&booking.space_id)
    .bind(&pin.digest)
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
    pin: &SealedPin,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE booking_pins SET pin_sealed = $2, pin_digest = $3, state = 'pending',
             pin_sent_at = now(), updated_at = now()
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(&pin.sealed)
    .bind(&pin.digest)
    .execute(db)
    .await?;
    Ok(())
}

/// PINs of other bookings that work, or are being set up, on `lock` now or later: a new PIN
/// avoids them, since RemoteLock may refuse a PIN already used on the device.
/// Which of the digests of candidate PINs are live on `lock` for a booking other than
/// `except`.
pub(crate) async fn live_on_lock(
    db: impl PgExecutor<'_>,
    lock: &LockId,
    except: &BookingId,
    digests: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT pin_digest FROM booking_pins
         WHERE lock_id = $1 AND pin_digest = ANY($3) AND booking_id <> $2
           AND state IN ('issued', 'pending') AND (valid_until IS NULL OR valid_until > now())",
    )
    // Planned anew each time: a plan cached while the table was small scans all of it.
    .persistent(false)
    .bind(lock)
    .bind(except)
    .bind(digests)
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

/// A guest made by this run, recorded with the PIN it announces.
pub(crate) struct NewGuest<'a> {
    pub guest: &'a GuestId,
    pub lock: &'a LockId,
    pub access: &'a AccessId,
}

/// Whether a PIN marked issued is announced to the patron (a new version) or not: a drift
/// repair that gave the guest back what the patron was told has nothing new to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Announced {
    NewVersion,
    Unchanged,
}

/// The PIN works: records its window, version, zone, the patron it is announced to and the
/// guest this run made (if any), notes `detail` in its history and resolves the booking's
/// `pin_not_issued` failure, in one statement. Answers the PIN version.
pub(crate) async fn mark_issued(
    tx: &mut Transaction<'_, Postgres>,
    booking: &Booking,
    validity: &PinValidity,
    zone: TimeZone,
    new_guest: Option<&NewGuest<'_>>,
    (detail, announced): (&str, Announced),
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "WITH issued AS (
             UPDATE booking_pins SET state = 'issued', pin_version = pin_version + $12,
                 space_id = $2, valid_from = $3, valid_until = $4, time_zone = $5,
                 patron_name = $6, patron_email = $7, guest_id = coalesce($8, guest_id),
                 lock_id = coalesce($9, lock_id), access_id = coalesce($10, access_id),
                 last_error = NULL, create_requested_at = NULL, reissue_requested_at = NULL,
                 drift_found_at = NULL, updated_at = now()
             WHERE booking_id = $1 RETURNING booking_id, pin_version),
         noted AS (
             INSERT INTO pin_history (booking_id, state, detail)
             SELECT booking_id, 'issued', $11 FROM issued),
         resolved AS ({resolving})
         SELECT pin_version FROM issued",
        resolving = failures::resolving("$13", "$1")
    ))
    .bind(&booking.booking_id)
    .bind(&booking.space_id)
    .bind(validity.valid_from)
    .bind(validity.valid_until)
    .bind(zone.name())
    .bind(&booking.patron.name)
    .bind(&booking.patron.email)
    .bind(new_guest.map(|g| g.guest))
    .bind(new_guest.map(|g| g.lock))
    .bind(new_guest.map(|g| g.access))
    .bind(detail)
    .bind(i32::from(announced == Announced::NewVersion))
    .bind(FailureKind::PinNotIssued)
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

/// Seals the PINs stored in clear before PINs were sealed at rest, and empties the plaintext
/// column: run as the provisioner starts, so an upgraded database keeps no PIN in clear past
/// its first start. Answers how many it sealed.
pub(crate) async fn seal_plaintext_pins(
    pool: &sqlx::PgPool,
    sealer: &PinSealer,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let plain: Vec<(BookingId, String)> = sqlx::query_as(
        "SELECT booking_id, pin FROM booking_pins WHERE pin IS NOT NULL FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sealed = 0;
    for (booking_id, pin) in &plain {
        // A value that is no PIN cannot be used anyway: it goes, sealing nothing.
        let pin = Pin::parse(pin.as_str()).ok().map(|pin| sealer.seal(&pin));
        sqlx::query(
            "UPDATE booking_pins SET pin = NULL, pin_sealed = $2, pin_digest = $3 WHERE booking_id = $1",
        )
        .bind(booking_id)
        .bind(pin.as_ref().map(|p| &p.sealed))
        .bind(pin.as_ref().map(|p| &p.digest))
        .execute(&mut *tx)
        .await?;
        sealed += usize::from(pin.is_some());
    }
    tx.commit().await?;
    Ok(sealed)
}

/// Written BEFORE the guest's window or grant is sent to RemoteLock: the lock must confirm it
/// anew, and a confirmation from before this is about what it had.
pub(crate) async fn sending(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE booking_pins SET pin_sent_at = now() WHERE booking_id = $1")
        .bind(booking_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The PIN went to the lock again after a failed sync.
pub(crate) async fn resent(
    db: impl PgExecutor<'_>,
    booking_id: &BookingId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE booking_pins SET resync_requested_at = NULL, updated_at = now() WHERE booking_id = $1",
    )
    .bind(booking_id)
    .execute(db)
    .await?;
    Ok(())
}
