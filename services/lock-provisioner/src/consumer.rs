//! Booking events in: one transaction per batch of deliveries, acked after commit. A booking
//! that needs nothing of RemoteLock is settled right here; the rest become provisioning jobs.

use std::time::Duration;

use chrono::Utc;
use lockbridge_domain::{
    BookingId, BookingWindow,
    events::{BookingData, Envelope},
};
use lockbridge_runtime::{
    amqp::{Delivery, Handler, HandlerError, decode_envelope},
    db::claim_events,
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
        self.handle_batch(std::slice::from_ref(delivery)).await
    }

    /// One transaction for the batch: the events are claimed together, then each booking is
    /// settled or queued.
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Result<(), HandlerError> {
        let mut events = deliveries
            .iter()
            .map(decode_envelope::<BookingData>)
            .collect::<Result<Vec<_>, _>>()?;
        // Rows are locked in booking order, so batches of two provisioner processes holding
        // the same bookings never wait on each other in a cycle.
        events.sort_by(|a, b| a.data.booking_id.cmp(&b.data.booking_id));
        let ids: Vec<_> = events.iter().map(|event| event.event_id).collect();
        let mut tx = self.pool.begin().await?;
        let fresh = claim_events(&mut tx, crate::SERVICE, &ids).await?;
        let mut queued = false;
        for event in &events {
            if fresh.contains(&event.event_id) {
                queued |= self.take(&mut tx, event).await?;
            } else {
                tracing::debug!(event_id = %event.event_id, "event seen before; ignoring redelivery");
            }
        }
        tx.commit().await?;
        if queued {
            provisioning::channel().ring();
        }
        Ok(())
    }
}

impl BookingEvents {
    /// Settles the booking here or queues its job; `true` when queued.
    async fn take(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &Envelope<BookingData>,
    ) -> Result<bool, HandlerError> {
        let booking_id = &event.data.booking_id;
        let window = BookingWindow::new(event.data.starts_at, event.data.ends_at)
            .map_err(|e| HandlerError::Poison(format!("not a valid booking: {e}")))?;
        if self.settled_here(tx, booking_id).await? {
            tracing::info!(%booking_id, event_type = event.event_type.as_str(), event_id = %event.event_id, correlation_id = %event.correlation_id, "booking event settled: no RemoteLock work");
            Ok(false)
        } else {
            provisioning::request(tx, booking_id, &window).await?;
            tracing::info!(%booking_id, event_type = event.event_type.as_str(), event_id = %event.event_id, correlation_id = %event.correlation_id, "booking event queued for provisioning");
            Ok(true)
        }
    }

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
