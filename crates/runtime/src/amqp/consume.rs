//! The consumer loop: the deliveries held are handled in batches, several at once, one
//! booking's in order, each acknowledged only after its batch's handler returned (so after its
//! transaction committed); reconnects with backoff when the broker goes away.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::Arc,
    time::Duration,
};

use futures_util::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Broker, BrokerError, publish::TRACEPARENT_HEADER, reconnect_delays, topology::WorkQueue,
};
use lockbridge_domain::{TraceParent, events::Envelope};

use crate::telemetry::error_chain;

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
    /// Whether deliveries may be handled in batches. A failed batch is handled again one
    /// delivery at a time, so a handler whose work reaches beyond its transaction (a publish)
    /// says no: what it did for the others before the failure would be done twice.
    const IN_BATCHES: bool = true;

    /// The key of the deliveries that must be handled in order, one at a time: by default the
    /// booking an event is about.
    fn lane(&self, delivery: &Delivery) -> Option<String> {
        booking_of(delivery)
    }

    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Handles deliveries of distinct bookings as one unit of work, typically one transaction:
    /// its fixed costs (begin, claiming the events, commit) are paid once for all. When it
    /// fails the consumer handles each delivery on its own, so one poison message, or one
    /// that fails for a reason that may pass, holds back no other. By default, one by one.
    fn handle_batch(
        &self,
        deliveries: &[Delivery],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        async move {
            for delivery in deliveries {
                self.handle(delivery).await?;
            }
            Ok(())
        }
    }
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
    #[error("a handler panicked (a bug): {0}")]
    HandlerPanicked(String),
}

/// The event type of a delivery, to choose how to read the rest of it.
pub fn event_type(
    delivery: &Delivery,
) -> Result<lockbridge_domain::events::EventType, HandlerError> {
    #[derive(serde::Deserialize)]
    struct Kind {
        event_type: lockbridge_domain::events::EventType,
    }
    serde_json::from_slice::<Kind>(&delivery.data)
        .map(|kind| kind.event_type)
        .map_err(|error| HandlerError::Poison(format!("not a valid event: {error}")))
}

pub struct Consumer<H> {
    pub broker: Broker,
    pub queue: WorkQueue,
    /// Unacknowledged deliveries held at most, and so handled at once: in four batches of up
    /// to a quarter of it each.
    pub prefetch: u16,
    pub handler: Arc<H>,
}

/// Batches handled at once: while one waits on the database, the others proceed.
const BATCHES_IN_FLIGHT: usize = 4;

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

    /// Handles the deliveries it holds at once, in batches, except that deliveries of one
    /// booking wait for each other, in the order they came: a handler never races another for
    /// the same booking, and a batch holds one delivery of a booking at most. Deliveries that
    /// arrive while the batches run wait for the next, so under load batches fill by
    /// themselves and a lone delivery is handled at once. Acknowledgements go one by one as
    /// batches finish, in any order.
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
        let batch = if H::IN_BATCHES {
            (usize::from(self.prefetch) / BATCHES_IN_FLIGHT).max(1)
        } else {
            1
        };
        let mut lanes = Lanes::default();
        let mut ready = Vec::new();
        let mut running = JoinSet::new();
        let ended = loop {
            while !ready.is_empty() && running.len() < BATCHES_IN_FLIGHT {
                let taken: Vec<_> = ready.drain(..ready.len().min(batch)).collect();
                running.spawn(self.settle_batch(taken, shutdown.clone()));
            }
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                Some(settled) = running.join_next(), if !running.is_empty() => {
                    let keys = match settled {
                        Ok((keys, Ok(()))) => keys,
                        Ok((_, Err(error))) => break Err(ConsumeError::Amqp(error)),
                        // Its deliveries stay unacknowledged on this channel: start afresh.
                        Err(error) => break Err(ConsumeError::HandlerPanicked(error.to_string())),
                    };
                    ready.extend(keys.into_iter().filter_map(|key| lanes.finished(key)));
                }
                next = deliveries.next() => match next {
                    Some(delivery) => {
                        let delivery = delivery?;
                        metrics::counter!("lockbridge_deliveries_consumed_total", "queue" => self.queue.name).increment(1);
                        ready.extend(lanes.admit(self.handler.lane(&delivery), delivery));
                    }
                    None => break Err(ConsumeError::CancelledByBroker),
                },
            }
        };
        // Handlers already in a transaction finish and settle; deliveries still waiting in a
        // lane, unacknowledged, return to the queue when the channel closes.
        while running.join_next().await.is_some() {}
        let _ = channel.close(200, "shutting down".into()).await;
        ended
    }

    /// Handles a batch and acknowledges it; a batch that failed, or of one, is settled one
    /// delivery at a time. Returns the batch's bookings.
    fn settle_batch(
        &self,
        batch: Vec<(Option<String>, Delivery)>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = (Vec<Option<String>>, Result<(), lapin::Error>)> + Send + 'static
    {
        let handler = Arc::clone(&self.handler);
        let queue = self.queue.name;
        async move {
            let (keys, deliveries): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            if deliveries.len() > 1 {
                match handler.handle_batch(&deliveries).await {
                    Ok(()) => {
                        for delivery in &deliveries {
                            if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                                return (keys, Err(error));
                            }
                            settled(queue, "acked");
                        }
                        return (keys, Ok(()));
                    }
                    Err(error) => {
                        tracing::warn!(queue, size = deliveries.len(), error = %error_chain(&error), "batch failed; handling its deliveries one by one");
                    }
                }
            }
            for delivery in deliveries {
                if let Err(error) = settle(&*handler, queue, delivery, &shutdown).await {
                    return (keys, Err(error));
                }
            }
            (keys, Ok(()))
        }
    }
}

/// Handles one delivery and settles it. A failure that may pass (the database restarting) is
/// retried here, holding the delivery, rather than requeued: every requeue counts toward the
/// queue's delivery limit, and an outage must not dead-letter accepted work.
async fn settle<H: Handler>(
    handler: &H,
    queue: &'static str,
    delivery: Delivery,
    shutdown: &CancellationToken,
) -> Result<(), lapin::Error> {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(ToString::to_string);
    // Every line handling it logs carries the booking and the correlation id of its event.
    let span = tracing::info_span!(
        "delivery",
        queue,
        booking_id = booking_of(&delivery).as_deref(),
        correlation_id = delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|id| id.as_str()),
        trace_id = traceparent_of(&delivery).map(|t| t.trace_id()),
    );
    let mut delays = reconnect_delays();
    let settled = loop {
        match handler.handle(&delivery).instrument(span.clone()).await {
            Ok(()) => {
                settled(queue, "acked");
                break delivery.ack(BasicAckOptions::default()).await;
            }
            Err(HandlerError::Poison(reason)) => {
                tracing::error!(queue, ?message_id, %reason, "dead-lettering message");
                dead_lettered(queue);
                settled(queue, "rejected");
                break delivery.reject(BasicRejectOptions { requeue: false }).await;
            }
            Err(error @ HandlerError::Retry(_)) => {
                metrics::counter!("lockbridge_deliveries_retried_total", "queue" => queue)
                    .increment(1);
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(queue, ?message_id, error = %error_chain(&error), ?delay, "handling failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    // Stopping: give the delivery back for another consumer (one requeue).
                    () = shutdown.cancelled() => {
                        settled(queue, "requeued");
                        let requeue = BasicNackOptions { requeue: true, ..Default::default() };
                        break delivery.nack(requeue).await;
                    }
                }
            }
        }
    };
    settled.map(drop)
}

/// Counts a delivery of `queue` sent to its dead-letter queue, by the broker (rejected) or by
/// the service with the reason in a header.
pub(crate) fn dead_lettered(queue: &'static str) {
    metrics::counter!("lockbridge_deliveries_dead_lettered_total", "queue" => queue).increment(1);
}

/// Counts how a delivery left this consumer: `acked`, `rejected` (dead-lettered by the
/// broker) or `requeued`.
fn settled(queue: &'static str, outcome: &'static str) {
    metrics::counter!("lockbridge_deliveries_settled_total", "queue" => queue, "outcome" => outcome)
        .increment(1);
}

/// The booking a delivery is about: every event names one in `data.booking_id`. A delivery
/// that names none (it will be dead-lettered as poison) waits for nothing.
fn booking_of(delivery: &Delivery) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        booking_id: String,
    }
    serde_json::from_slice::<Keyed>(&delivery.data)
        .ok()
        .map(|keyed| keyed.data.booking_id)
}

/// The W3C trace context the publisher sent in the `traceparent` header; a malformed one is
/// ignored, as the specification asks.
pub fn traceparent_of(delivery: &Delivery) -> Option<TraceParent> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(TRACEPARENT_HEADER)? {
        AMQPValue::LongString(value) => TraceParent::parse(&value.to_string()).ok(),
        _ => None,
    }
}

/// The bookings being handled, each with the deliveries waiting behind the running one.
#[derive(Default)]
struct Lanes(HashMap<String, VecDeque<Delivery>>);

impl Lanes {
    /// The delivery to start now, or `None` when it waits behind its booking's running one.
    fn admit(
        &mut self,
        key: Option<String>,
        delivery: Delivery,
    ) -> Option<(Option<String>, Delivery)> {
        let Some(key) = key else {
            return Some((None, delivery));
        };
        match self.0.get_mut(&key) {
            Some(waiting) => {
                waiting.push_back(delivery);
                None
            }
            None => {
                self.0.insert(key.clone(), VecDeque::new());
                Some((Some(key), delivery))
            }
        }
    }

    /// The booking's running delivery is settled: its next one, if any, starts.
    fn finished(&mut self, key: Option<String>) -> Option<(Option<String>, Delivery)> {
        let key = key?;
        let waiting = self.0.get_mut(&key)?;
        match waiting.pop_front() {
            Some(next) => Some((Some(key), next)),
            None => {
                self.0.remove(&key);
                None
            }
        }
    }
}
