//! Asking the lock-provisioner to look at a booking again. Booking events, a new link and a
//! staff reissue all come down to one durable job per booking, which reconciles RemoteLock with
//! the booking as stored when it runs.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};

use lockbridge_domain::{BookingId, BookingWindow};
use lockbridge_runtime::{
    jobs::{self, OnConflict},
    wakeup::Channel,
};

/// The lock-provisioner's queue.
pub const QUEUE: &str = "provision";

/// The job says only which booking to look at; the booking itself is read when the job runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProvisionJob {
    pub booking_id: BookingId,
}

/// Where the provisioner's workers wait: after committing requests, ring it in the
/// provisioner's own process, notify it from elsewhere (see `wakeup`).
pub fn channel() -> Channel {
    Channel::jobs(QUEUE)
}

/// Queues (or re-queues) the booking's provisioning in the caller's transaction; the caller
/// wakes the workers through [`channel`].
pub async fn request(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: &BookingId,
    window: &BookingWindow,
) -> Result<(), sqlx::Error> {
    let job = ProvisionJob {
        booking_id: booking_id.clone(),
    };
    jobs::enqueue(
        tx,
        QUEUE,
        booking_id.as_str(),
        &job,
        priority(window, Utc::now()),
        OnConflict::Requeue,
    )
    .await
}

/// Asks for a new PIN on the booking's guest (staff reissue, or a PIN a lock refused): the run
/// that gives it clears the request and announces it with `reason: reissued`. Rare, and asked
/// from any service, so it wakes the provisioners wherever they run.
pub async fn request_new_pin(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: &BookingId,
    window: &BookingWindow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE booking_pins SET reissue_requested_at = now(), updated_at = now()
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .execute(&mut **tx)
    .await?;
    request(tx, booking_id, window).await?;
    channel().notify(&mut **tx).await
}

/// Under a backlog the booking whose PIN must work soonest goes first: ordering by the start is
/// ordering by the PIN's validity start, the lead time being the same for all. A booking that
/// has ended needs no RemoteLock call, only its state written, so it never goes before one
/// that may still need a door.
fn priority(window: &BookingWindow, now: DateTime<Utc>) -> DateTime<Utc> {
    if window.ends_at() <= now {
        after_every_booking()
    } else {
        window.starts_at()
    }
}

fn after_every_booking() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn soonest_start_first_and_ended_bookings_last() {
        let now = at("2026-12-01T12:00:00Z");
        let window = |start, end| BookingWindow::new(at(start), at(end)).unwrap();
        let started = priority(&window("2026-12-01T11:00:00Z", "2026-12-01T13:00:00Z"), now);
        let soon = priority(&window("2026-12-01T12:30:00Z", "2026-12-01T13:00:00Z"), now);
        let next_year = priority(&window("2027-12-01T12:30:00Z", "2027-12-01T13:00:00Z"), now);
        let ended = priority(&window("2020-12-01T11:00:00Z", "2020-12-01T12:00:00Z"), now);
        assert!(started < soon && soon < next_year && next_year < ended);
    }
}
