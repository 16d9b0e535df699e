//! What lockbridge believes it left in RemoteLock, read from `booking_pins`: the guests of
//! confirmed bookings whose PIN is issued on the lock their space is linked to, and the
//! deactivated guests of bookings that want no PIN — both while their window is not over
//! (after it a guest opens nothing, and RemoteLock refuses to change it). Only guest ids
//! recorded here are ever looked at: a guest lockbridge did not create is never touched.

use chrono::{DateTime, Utc};
use lockbridge_domain::{
    BookingId, BookingWindow, GuestId, LockId, PinState, PinValidity, TimeZone,
};
use lockbridge_sealing::{SealError, pins::PinSealer};
use sqlx::PgPool;
use uuid::Uuid;

use super::compare::Expected;

pub(crate) struct Believed {
    pub booking_id: BookingId,
    pub correlation_id: Uuid,
    pub guest_id: GuestId,
    pub expected: Expected,
    /// The booking's own window: the repair job's priority.
    pub window: BookingWindow,
    /// The record as read: a repair writes only while it is still so, so a provisioning run
    /// that changed it meanwhile wins.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    booking_id: BookingId,
    correlation_id: Uuid,
    state: PinState,
    guest_id: GuestId,
    lock_id: Option<LockId>,
    valid_from: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
    time_zone: Option<String>,
    pin_sealed: Option<Vec<u8>>,
    updated_at: DateTime<Utc>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

pub(crate) async fn read(pool: &PgPool, sealer: &PinSealer) -> Result<Vec<Believed>, ReadError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.booking_id, p.correlation_id, p.state, p.guest_id, p.lock_id, p.valid_from,
                p.valid_until, p.time_zone, p.pin_sealed, p.updated_at, b.starts_at, b.ends_at
         FROM booking_pins p
         JOIN bookings b USING (booking_id)
         LEFT JOIN lock_links k ON k.space_id = b.space_id
         WHERE p.guest_id IS NOT NULL AND p.drift_found_at IS NULL AND p.valid_until > now()
           AND ((p.state = 'issued' AND b.status = 'confirmed' AND k.lock_id = p.lock_id)
                OR (p.state = 'revoked' AND b.status <> 'confirmed'))
         ORDER BY p.valid_from, p.booking_id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let expected = match (row.state, row.lock_id) {
                (PinState::Issued, Some(lock)) => Expected::Live {
                    lock,
                    window: row
                        .valid_from
                        .zip(row.valid_until)
                        .zip(row.time_zone.as_deref())
                        .map(|((valid_from, valid_until), zone)| {
                            PinValidity {
                                valid_from,
                                valid_until,
                            }
                            .in_zone(TimeZone::from_stored(zone))
                        }),
                    pin: row
                        .pin_sealed
                        .as_deref()
                        .map(|s| sealer.open(s))
                        .transpose()?,
                },
                _ => Expected::Deactivated,
            };
            Ok(Believed {
                booking_id: row.booking_id,
                correlation_id: row.correlation_id,
                guest_id: row.guest_id,
                expected,
                window: BookingWindow::new(row.starts_at, row.ends_at)
                    .expect("the schema checks ends_at > starts_at"),
                updated_at: row.updated_at,
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the PIN records")]
    Database(#[from] sqlx::Error),
    #[error("a stored PIN cannot be opened")]
    Unsealable(#[from] SealError),
}
