//! Booking events in, provisioning jobs out: one transaction per delivery, acked after commit.

use lockbridge_shared::{
    amqp::{Delivery, Handler, HandlerError, decode_envelope},
    db::claim_event,
    domain::BookingWindow,
    events::BookingData,
    provisioning,
};
use sqlx::PgPool;

pub(crate) struct BookingEvents {
    pub pool: PgPool,
}

impl Handler for BookingEvents {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event = decode_envelope::<BookingData>(delivery)?;
        let mut tx = self.pool.begin().await?;
        if claim_event(&mut tx, crate::SERVICE, event.event_id).await? {
            let booking_id = &event.data.booking_id;
            let window = BookingWindow::new(event.data.starts_at, event.data.ends_at)
                .map_err(|e| HandlerError::Poison(format!("not a valid booking: {e}")))?;
            provisioning::request(&mut tx, booking_id, &window).await?;
            tracing::info!(%booking_id, event_type = event.event_type.as_str(), event_id = %event.event_id, correlation_id = %event.correlation_id, "booking event queued for provisioning");
        } else {
            tracing::debug!(event_id = %event.event_id, "event seen before; ignoring redelivery");
        }
        tx.commit().await?;
        Ok(())
    }
}
