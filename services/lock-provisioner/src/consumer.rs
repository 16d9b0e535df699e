//! Booking events in, provisioning jobs out: one transaction per delivery, acked after commit.

use lockbridge_shared::{
    amqp::{Delivery, Handler, HandlerError, decode_envelope},
    db::claim_event,
    events::BookingData,
    jobs::{self, OnConflict, PROVISION_QUEUE},
};
use sqlx::PgPool;

use crate::reconcile::ProvisionJob;

pub(crate) struct BookingEvents {
    pub pool: PgPool,
}

impl Handler for BookingEvents {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event = decode_envelope::<BookingData>(delivery)?;
        let mut tx = self.pool.begin().await?;
        if claim_event(&mut tx, crate::SERVICE, event.event_id).await? {
            let booking_id = &event.data.booking_id;
            let job = ProvisionJob {
                booking_id: booking_id.clone(),
            };
            // Soonest booking first when RemoteLock's rate limit makes a backlog.
            jobs::enqueue(
                &mut tx,
                PROVISION_QUEUE,
                booking_id.as_str(),
                &job,
                event.data.starts_at,
                OnConflict::Requeue,
            )
            .await?;
            tracing::info!(%booking_id, event_type = event.event_type.as_str(), event_id = %event.event_id, correlation_id = %event.correlation_id, "booking event queued for provisioning");
        } else {
            tracing::debug!(event_id = %event.event_id, "event seen before; ignoring redelivery");
        }
        tx.commit().await?;
        Ok(())
    }
}
