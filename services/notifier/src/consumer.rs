//! Takes the PIN events off `notifier.pins`. A `pin.issued` becomes a durable email job in the
//! statement that claims the event (one for a batch of deliveries), so the delivery is acknowledged at once and an SMTP relay
//! that is down is the job worker's business, not the broker's. `pin.failed` and `pin.revoked`
//! are only logged: staff are emailed from the failure the provisioner opens (see `alerts`).

use lockbridge_domain::events::{Envelope, EventType, PinFailedData, PinRevokedData};
use lockbridge_runtime::{
    amqp::{Delivery, Handler, HandlerError, decode_envelope, event_type},
    jobs::{self, EventJob, JobHandler},
    wakeup::Channel,
};
use lockbridge_sealing::pins::PinSealer;
use sqlx::PgPool;

use crate::sender::{EmailJob, PinEmailSender, job_key};

pub struct PinEvents {
    pub pool: PgPool,
    /// Seals the PIN of each email job: it waits in the database until the email goes.
    pub pins: PinSealer,
}

impl Handler for PinEvents {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        self.handle_batch(std::slice::from_ref(delivery)).await
    }

    /// The batch's `pin.issued` events become email jobs in one statement.
    async fn handle_batch(&self, deliveries: &[Delivery]) -> Result<(), HandlerError> {
        let mut issued: Vec<EmailJob> = Vec::new();
        for delivery in deliveries {
            match event_type(delivery)? {
                EventType::PinIssued => issued.push(decode_envelope(delivery)?),
                EventType::PinFailed => {
                    let event: Envelope<PinFailedData> = decode_envelope(delivery)?;
                    tracing::error!(
                        booking_id = %event.data.booking_id,
                        correlation_id = %event.correlation_id,
                        reason = %event.data.error,
                        "a booking will get no PIN until staff act"
                    );
                }
                EventType::PinRevoked => {
                    let event: Envelope<PinRevokedData> = decode_envelope(delivery)?;
                    tracing::info!(booking_id = %event.data.booking_id, lock_id = %event.data.lock_id, "PIN revoked");
                }
                other => {
                    return Err(HandlerError::Poison(format!(
                        "not a PIN event: {}",
                        other.as_str()
                    )));
                }
            }
        }
        if issued.is_empty() {
            return Ok(());
        }
        let mut jobs = Vec::with_capacity(issued.len());
        for event in &issued {
            let mut payload =
                serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            self.pins.seal_field(&mut payload, "/data/pin");
            jobs.push(EventJob {
                event_id: event.event_id,
                key: job_key(&event.data),
                payload,
                // The booking that starts soonest is emailed first.
                priority_at: event.data.booking_starts_at,
            });
        }
        // A job that exists is kept, not requeued: a second event for the same PIN version
        // must not make a second email.
        let fresh =
            jobs::enqueue_for_new_events(&self.pool, crate::CONSUMER, PinEmailSender::QUEUE, &jobs)
                .await?;
        if fresh.len() < jobs.len() {
            tracing::debug!(
                redelivered = jobs.len() - fresh.len(),
                "redelivered events were handled before"
            );
        }
        Channel::jobs(PinEmailSender::QUEUE).ring();
        Ok(())
    }
}
