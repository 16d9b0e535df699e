//! The consumer loop: one delivery at a time, acknowledged only after the handler returned
//! (so after its transaction committed); reconnects with backoff when the broker goes away.

use std::{future::Future, sync::Arc, time::Duration};

use futures_util::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    },
    types::FieldTable,
};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError, reconnect_delays, topology::WorkQueue};
use crate::{events::Envelope, telemetry::error_chain};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The message can never be handled (malformed, unknown schema): dead-letter it now.
    #[error("poison message: {0}")]
    Poison(String),
    /// Handling failed for a reason that may pass (the database is restarting): the consumer
    /// retries with backoff while holding the delivery.
    #[error("handling failed, will retry")]
    Retry(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for HandlerError {
    /// An error the database will give again for the same message (a constraint, bad data) is
    /// poison: retried while holding the delivery it would hold the queue forever.
    fn from(error: sqlx::Error) -> Self {
        if crate::db::will_not_pass(&error) {
            Self::Poison(format!("the database refuses it: {}", error_chain(&error)))
        } else {
            Self::Retry(Box::new(error))
        }
    }
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Parses a delivery's body as an event envelope; a body that does not parse is poison.
pub fn decode_envelope<T: DeserializeOwned>(
    delivery: &Delivery,
) -> Result<Envelope<T>, HandlerError> {
    serde_json::from_slice(&delivery.data)
        .map_err(|error| HandlerError::Poison(format!("not a valid event: {error}")))
}

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("RabbitMQ channel failed")]
    Amqp(#[from] lapin::Error),
    #[error("the broker cancelled the consumer (queue deleted?)")]
    CancelledByBroker,
}

/// The event type of a delivery, to choose how to read the rest of it.
pub fn event_type(delivery: &Delivery) -> Result<crate::events::EventType, HandlerError> {
    #[derive(serde::Deserialize)]
    struct Kind {
        event_type: crate::events::EventType,
    }
    serde_json::from_slice::<Kind>(&delivery.data)
        .map(|kind| kind.event_type)
        .map_err(|error| HandlerError::Poison(format!("not a valid event: {error}")))
}

pub struct Consumer<H> {
    pub broker: Broker,
    pub queue: WorkQueue,
    pub prefetch: u16,
    pub handler: Arc<H>,
}

impl<H: Handler> Consumer<H> {
    /// Consumes until `shutdown` is cancelled. Broker failures are logged and retried forever.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut delays = reconnect_delays();
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(queue = self.queue.name, error = %error_chain(&error), ?delay, "consumer lost the broker; reconnecting");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {},
                    }
                }
            }
        }
        tracing::info!(queue = self.queue.name, "consumer stopped");
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), ConsumeError> {
        let channel = self.broker.channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let mut deliveries = channel
            .basic_consume(
                self.queue.name.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue = self.queue.name, "consuming");
        loop {
            let delivery = tokio::select! {
                () = shutdown.cancelled() => {
                    // Unacknowledged prefetched deliveries return to the queue when the
                    // channel closes.
                    let _ = channel.close(200, "shutting down".into()).await;
                    return Ok(());
                }
                next = deliveries.next() => match next {
                    Some(delivery) => delivery?,
                    None => return Err(ConsumeError::CancelledByBroker),
                },
            };
            self.settle(delivery, shutdown).await?;
        }
    }

    /// Handles one delivery and settles it. A failure that may pass (the database restarting)
    /// is retried here, holding the delivery, rather than requeued: every requeue counts
    /// toward the queue's delivery limit, and an outage must not dead-letter accepted work.
    async fn settle(
        &self,
        delivery: Delivery,
        shutdown: &CancellationToken,
    ) -> Result<(), lapin::Error> {
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string);
        let mut delays = reconnect_delays();
        loop {
            match self.handler.handle(&delivery).await {
                Ok(()) => return delivery.ack(BasicAckOptions::default()).await.map(drop),
                Err(HandlerError::Poison(reason)) => {
                    tracing::error!(queue = self.queue.name, ?message_id, %reason, "dead-lettering message");
                    return delivery
                        .reject(BasicRejectOptions { requeue: false })
                        .await
                        .map(drop);
                }
                Err(error @ HandlerError::Retry(_)) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(queue = self.queue.name, ?message_id, error = %error_chain(&error), ?delay, "handling failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        // Stopping: give the delivery back for another consumer (one requeue).
                        () = shutdown.cancelled() => {
                            let requeue = BasicNackOptions { requeue: true, ..Default::default() };
                            return delivery.nack(requeue).await.map(drop);
                        }
                    }
                }
            }
        }
    }
}
