//! Takes `pin.issued` events off `notifier.pins`. Each becomes a durable email job in the
//! transaction that claims the event, so the delivery is acknowledged at once and a relay that
//! is down is the job worker's business, not the broker's.

use lapin::message::Delivery;
use lockbridge_shared::{
    amqp::{Handler, HandlerError, decode_envelope},
    db::claim_event,
    events::EventType,
    jobs::{self, JobHandler, OnConflict},
};
use sqlx::PgPool;

use crate::sender::{EmailJob, PinEmailSender, job_key};

pub struct PinIssuedHandler {
    pub pool: PgPool,
}

impl Handler for PinIssuedHandler {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event: EmailJob = decode_envelope(delivery)?;
        if event.event_type != EventType::PinIssued {
            return Err(HandlerError::Poison(format!(
                "expected a pin.issued event, got {}",
                event.event_type.as_str()
            )));
        }
        let pin = &event.data;
        let mut tx = self.pool.begin().await?;
        if claim_event(&mut tx, crate::CONSUMER, event.event_id).await? {
            // Ignore, not requeue: a second event for the same PIN version must not make a
            // second email, and the booking that starts soonest is emailed first.
            jobs::enqueue(
                &mut tx,
                PinEmailSender::QUEUE,
                &job_key(pin),
                &event,
                pin.booking_starts_at,
                OnConflict::Ignore,
            )
            .await?;
        } else {
            tracing::debug!(event_id = %event.event_id, "redelivered event was handled before");
        }
        tx.commit().await?;
        Ok(())
    }
}
