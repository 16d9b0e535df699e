//! Booking events in: one transaction per delivery, acked after commit. A booking that needs
//! nothing of RemoteLock is settled right here; the rest become provisioning jobs.

use std::time::Duration;

use chrono::Utc;
use lockbridge_domain::{BookingId, BookingWindow, events::BookingData};
use lockbridge_runtime::{
    amqp::{Delivery, Handler, HandlerError, decode_envelope},
    db::claim_event,
    jobs,
};
use lockbridge_work::provisioning;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    plan::{Plan, plan},
    store,
};

pub(crate) struct BookingEvents {
    pub pool: PgPool,
    pub lead_time: Duration,
    pub grace: Duration,
}

impl Handler for BookingEvents {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event = decode_envelope::<BookingData>(delivery)?;
        let mut tx = self.pool.begin().await?;
        let mut queued = false;
        if claim_event(&mut tx, crate::SERVICE, event.event_id).await? {
            let booking_id = &event.data.booking_id;
            let window = BookingWindow::new(event.data.starts_at, event.data.ends_at)
                .map_err(|e| HandlerError::Poison(format!("not a valid booking: {e}")))?;
            if self.settled_here(&mut tx, booking_id).await? {
                tracing::info!(%booking_id, event_type = event.event_type.as_str(), event_id = %event.event_id, correlation_id = %event.correlation_id, "booking event settled: no RemoteLock work");
            } else {
                provisioning::request(&mut tx, booking_id, &window).await?;
                queued = true;
                tracing::info!(%booking_id, event_type = event.event_type.as_str(), event_id = %event.event_id, correlation_id = %event.correlation_id, "booking event queued for provisioning");
            }
        } else {
            tracing::debug!(event_id = %event.event_id, "event seen before; ignoring redelivery");
        }
        tx.commit().await?;
        if queued {
            provisioning::channel().ring();
        }
        Ok(())
    }
}

impl BookingEvents {
    /// Most bookings need no RemoteLock request (a space without a lock, a tentative or
    /// cancelled booking that never had a guest): the job's plan is applied here, in the
    /// event's transaction, instead of queueing them behind bookings that need a door. Not
    /// while the booking's job is queued or running: that run may be making a guest this
    /// transaction cannot see yet, and must look again.
    async fn settled_here(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        booking_id: &BookingId,
    ) -> Result<bool, sqlx::Error> {
        if jobs::is_pending(&mut *tx, provisioning::QUEUE, booking_id.as_str()).await? {
            return Ok(false);
        }
        let Some((booking, record)) = store::booking(&mut **tx, booking_id).await? else {
            // Not stored (yet): the job reports it.
            return Ok(false);
        };
        let validity = booking.window.pin_validity(self.lead_time, self.grace);
        match plan(&booking, record.as_ref(), &validity, Utc::now()) {
            Plan::Record { state, detail } => {
                store::set_state(tx, &booking, state, detail).await?;
                Ok(true)
            }
            Plan::Nothing => Ok(true),
            Plan::Issue { .. } | Plan::Follow { .. } | Plan::Revoke { .. } => Ok(false),
        }
    }
}
