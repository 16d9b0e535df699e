//! What the API answers about a booking: the booking as stored, with its PIN's state.

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingId, BookingStatus, Patron, Pin, PinState, SpaceId};
use lockbridge_http::problem::Problem;
use lockbridge_sealing::{SealError, pins::PinSealer};
use serde::Serialize;
use sqlx::PgExecutor;

use crate::auth::Source;

#[derive(Debug, Serialize)]
pub(crate) struct PinView {
    state: PinState,
    pin: Option<Pin>,
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
pub(crate) struct ViewRow {
    pub(crate) booking_id: BookingId,
    pub(crate) space_id: SpaceId,
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) ends_at: DateTime<Utc>,
    pub(crate) status: BookingStatus,
    pub(crate) patron_name: String,
    pub(crate) patron_email: String,
    pub(crate) revision: Option<i64>,
    pub(crate) time_zone: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) linked: bool,
    #[sqlx(flatten)]
    pub(crate) pin: PinRow,
}

/// The booking's PIN record, if the provisioner has written one.
#[derive(sqlx::FromRow)]
pub(crate) struct PinRow {
    pub(crate) pin_state: Option<PinState>,
    pub(crate) pin_sealed: Option<Vec<u8>>,
    pub(crate) synced_at: Option<DateTime<Utc>>,
    pub(crate) pin_sent_at: Option<DateTime<Utc>>,
    pub(crate) valid_from: Option<DateTime<Utc>>,
    pub(crate) valid_until: Option<DateTime<Utc>>,
}

impl ViewRow {
    /// The view the API answers, its PIN opened.
    pub(crate) fn view(self, pins: &PinSealer) -> Result<BookingView, SealError> {
        let row = self;
        let state = row
            .pin
            .pin_state
            .unwrap_or_else(|| PinState::before_provisioning(row.linked, row.status));
        let pin = match row.pin.pin_sealed {
            Some(sealed) if state == PinState::Issued => Some(pins.open(&sealed)?),
            _ => None,
        };
        let state = state.shown(row.pin.synced_at, row.pin.pin_sent_at);
        Ok(BookingView {
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
                pin,
                valid_from: row.pin.valid_from,
                valid_until: row.pin.valid_until,
            },
        })
    }
}

pub(crate) async fn load_view(
    db: impl PgExecutor<'_>,
    pins: &PinSealer,
    source: &Source,
    booking_id: &BookingId,
) -> Result<Option<BookingView>, Problem> {
    let row: Option<ViewRow> = sqlx::query_as(
        "SELECT b.booking_id, b.space_id, b.starts_at, b.ends_at, b.status, b.patron_name,
                b.patron_email, b.revision, l.time_zone, b.created_at, b.updated_at,
                (k.space_id IS NOT NULL) AS linked,
                p.state AS pin_state, p.pin_sealed, p.synced_at, p.pin_sent_at, p.valid_from, p.valid_until
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
    Ok(row.map(|row| row.view(pins)).transpose()?)
}
