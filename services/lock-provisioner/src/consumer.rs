//! Booking events in: one transaction per batch of deliveries, acked after commit. A booking
//! that needs nothing of RemoteLock is settled right here; the rest become provisioning jobs.

use std::{collections::HashSet, time::Duration};

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
        events.retain(|event| {
            let fresh = fresh.contains(&event.event_id);
            if !fresh {
                tracing::debug!(event_id = %event.event_id, "event seen before; ignoring redelivery");
            }
            fresh
        });
        let settled = self.settle_here(&mut tx, &events).await?;
        let mut queued = false;
        for event in &events {
            let booking_id = &event.data.booking_id;
            let (event_type, event_id, correlation_id) = (
                event.event_type.as_str(),
                event.event_id,
                event.correlation_id,
            );
            if settled.contains(booking_id) {
                tracing::info!(%booking_id, event_type, %event_id, %correlation_id, "booking event settled: no RemoteLock work");
            } else {
                let window = BookingWindow::new(event.data.starts_at, event.data.ends_at)
                    .map_err(|e| HandlerError::Poison(format!("not a valid booking: {e}")))?;
                provisioning::request(&mut tx, booking_id, &window).await?;
                tracing::info!(%booking_id, event_type, %event_id, %correlation_id, "booking event queued for provisioning");
                queued = true;
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
    /// Most bookings need no RemoteLock request (a space without a lock, a tentative or
    /// cancelled booking that never had a guest): the job's plan is applied here, in the
    /// events' transaction, for the whole batch in three statements, instead of queueing them
    /// behind bookings that need a door. Not while the booking's job is queued or running:
    /// that run may be making a guest this transaction cannot see yet, and must look again.
    /// Answers the bookings settled.
    async fn settle_here(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[Envelope<BookingData>],
    ) -> Result<HashSet<BookingId>, sqlx::Error> {
        let keys: Vec<&str> = events.iter().map(|e| e.data.booking_id.as_str()).collect();
        let pending = jobs::pending(tx, provisioning::QUEUE, &keys).await?;
        let free: Vec<BookingId> = events
            .iter()
            .map(|e| &e.data.booking_id)
            .filter(|id| !pending.contains(id.as_str()))
            .cloned()
            .collect();
        // A booking not stored (yet) is not settled here: its job reports it.
        let stored = store::bookings(&mut **tx, &free).await?;
        let now = Utc::now();
        let mut settled = HashSet::new();
        let mut states = Vec::new();
        for (booking, record) in &stored {
            let validity = booking.validity(self.lead_time, self.grace);
            match plan(booking, record.as_ref(), &validity, now) {
                Plan::Record { state, detail } => states.push((booking, state, detail)),
                Plan::Nothing => {}
                Plan::Issue { .. } | Plan::Follow { .. } | Plan::Revoke { .. } => continue,
            }
            settled.insert(booking.booking_id.clone());
        }
        store::set_states(tx, &states).await?;
        Ok(settled)
    }
}
