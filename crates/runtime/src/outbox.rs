//! The transactional outbox: an event is written in the same transaction as the change it
//! announces, and a relay publishes it afterwards (design §4). Rows are marked sent only after
//! RabbitMQ confirmed them, so a crash at any instant republishes rather than loses; consumers
//! deduplicate by `event_id`.

use std::{sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use lockbridge_domain::events::Envelope;

use crate::{
    amqp::{Broker, OutgoingMessage, Publisher},
    at_rest::{AtRest, OpenError},
    telemetry::error_chain,
    wakeup::{Channel, Wakeup},
};

/// Adds `event` to the producer's outbox inside the caller's transaction.
pub async fn enqueue<T: Serialize + DeserializeOwned>(
    tx: &mut Transaction<'_, Postgres>,
    producer: &str,
    event: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    enqueue_all(tx, producer, std::slice::from_ref(event)).await
}

/// [`enqueue`] for an event with a secret: it rests sealed by `at_rest`, which the producer's
/// [`Relay`] opens as it publishes.
pub async fn enqueue_sealed<T: Serialize + DeserializeOwned>(
    tx: &mut Transaction<'_, Postgres>,
    producer: &str,
    event: &Envelope<T>,
    at_rest: &dyn AtRest,
) -> Result<(), sqlx::Error> {
    insert(tx, producer, std::slice::from_ref(event), Some(at_rest)).await
}

/// Adds `events` to the producer's outbox inside the caller's transaction, in one statement.
pub async fn enqueue_all<T: Serialize + DeserializeOwned>(
    tx: &mut Transaction<'_, Postgres>,
    producer: &str,
    events: &[Envelope<T>],
) -> Result<(), sqlx::Error> {
    insert(tx, producer, events, None).await
}

async fn insert<T: Serialize + DeserializeOwned>(
    tx: &mut Transaction<'_, Postgres>,
    producer: &str,
    events: &[Envelope<T>],
    at_rest: Option<&dyn AtRest>,
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut payloads = events
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    if let Some(at_rest) = at_rest {
        payloads
            .iter_mut()
            .for_each(|payload| at_rest.seal(payload));
    }
    // Ordered as given: the relay publishes by id, so the events go out in this order.
    sqlx::query(
        "INSERT INTO outbox (producer, event_id, exchange, routing_key, payload)
         SELECT $1, event_id, exchange, routing_key, payload
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::jsonb[])
             WITH ORDINALITY AS e (event_id, exchange, routing_key, payload, n)
         ORDER BY n",
    )
    .bind(producer)
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.event_type.exchange())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(payloads)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    event_id: Uuid,
    exchange: String,
    routing_key: String,
    /// The envelope as stored, sent as it is once its sealed fields are open.
    payload: String,
    correlation_id: Option<String>,
    traceparent: Option<String>,
}

/// Publishes one producer's outbox, woken by the code that enqueues (a ring after its commit)
/// and, as a safety net, by a slow poll.
pub struct Relay {
    pub pool: PgPool,
    pub broker: Broker,
    pub producer: &'static str,
    /// Opens what [`enqueue_sealed`] sealed; `None` for a producer that seals nothing.
    pub at_rest: Option<Arc<dyn AtRest>>,
}

const BATCH: i64 = 100;
const POLL: Duration = Duration::from_secs(5);
/// The longest an event the broker refused waits before it is tried again.
const MAX_REFUSED_DELAY: chrono::Duration = chrono::Duration::minutes(5);

impl RelayError {
    /// The broker refused this one event (no queue bound for it, a nack): a fault of the
    /// event or the topology, not of the connection, so other events may still go out.
    fn is_the_events(&self) -> bool {
        matches!(
            self,
            Self::Unopenable { .. }
                | Self::Publish {
                    source: crate::amqp::PublishError::Unroutable { .. }
                        | crate::amqp::PublishError::Nacked,
                    ..
                }
        )
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("outbox database access failed")]
    Database(#[from] sqlx::Error),
    #[error("event {event_id} cannot be opened for publishing")]
    Unopenable {
        event_id: Uuid,
        #[source]
        source: OpenError,
    },
    #[error("publishing event {event_id} failed")]
    Publish {
        event_id: Uuid,
        #[source]
        source: crate::amqp::PublishError,
    },
}

impl Relay {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut publisher = Publisher::new(self.broker.clone());
        let mut wakeup = Wakeup::new(self.pool.clone(), Channel::outbox(self.producer));
        let mut delays = crate::amqp::reconnect_delays();
        while !shutdown.is_cancelled() {
            wakeup.subscribe().await;
            match self.drain(&mut publisher, &shutdown).await {
                Ok(()) => delays = crate::amqp::reconnect_delays(),
                Err(error) => {
                    let delay = delays.next().unwrap_or(POLL);
                    tracing::warn!(producer = self.producer, error = %error_chain(&error), ?delay, "outbox relay failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wakeup.wait(POLL) => {},
            }
        }
        tracing::info!(producer = self.producer, "outbox relay stopped");
    }

    /// Publishes until the outbox is empty. Each batch is locked (`SKIP LOCKED`, so two relays
    /// of one producer never publish the same row concurrently) and marked sent in the same
    /// transaction, after every confirm arrived.
    async fn drain(
        &self,
        publisher: &mut Publisher,
        shutdown: &CancellationToken,
    ) -> Result<(), RelayError> {
        // Between batches a shutdown wins: what is left is published by the next start.
        while !shutdown.is_cancelled() {
            let mut tx = self.pool.begin().await?;
            let rows: Vec<OutboxRow> = sqlx::query_as(
                "SELECT id, event_id, exchange, routing_key, payload::text AS payload,
                        payload->>'correlation_id' AS correlation_id,
                        payload->>'traceparent' AS traceparent FROM outbox
                 WHERE producer = $1 AND published_at IS NULL
                   AND (retry_at IS NULL OR retry_at <= now())
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(self.producer)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                return Ok(());
            }
            // An event that cannot be opened is not published; it is recorded like one the
            // broker refused, and the others go on.
            let (rows, unopenable): (Vec<_>, Vec<_>) = rows
                .into_iter()
                .map(|row| self.opened(row))
                .partition(Result::is_ok);
            let rows: Vec<OutboxRow> = rows.into_iter().filter_map(Result::ok).collect();
            let messages: Vec<OutgoingMessage<'_>> = rows.iter().map(message).collect();
            let results = publisher.publish_all(&messages).await;
            let mut sent = Vec::with_capacity(rows.len());
            let mut failure = None;
            let published = rows.iter().zip(results).map(|(row, result)| {
                let result = result.map_err(|source| RelayError::Publish {
                    event_id: row.event_id,
                    source,
                });
                (row.id, result)
            });
            let refused = unopenable
                .into_iter()
                .filter_map(Result::err)
                .map(|(id, error)| (id, Err(error)));
            for (id, result) in published.chain(refused) {
                match result {
                    Ok(()) => sent.push(id),
                    // The broker refused this event, not the connection: it waits out a
                    // backoff and the rows around it go on.
                    Err(error) if error.is_the_events() => {
                        tracing::error!(producer = self.producer, error = %error_chain(&error), "event refused; retrying it later");
                        sqlx::query(
                            "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                                 retry_at = now() + least(interval '1 second' * power(2, attempts), $3)
                             WHERE id = $1",
                        )
                        .bind(id)
                        .bind(error_chain(&error))
                        .bind(MAX_REFUSED_DELAY)
                        .execute(&mut *tx)
                        .await?;
                    }
                    // The first connection failure is the one worth recording; the rows
                    // after it were not sent, or not confirmed, and go out again.
                    Err(error) => {
                        if failure.is_none() {
                            failure = Some((id, error));
                        }
                    }
                }
            }
            sqlx::query("UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1)")
                .bind(&sent)
                .execute(&mut *tx)
                .await?;
            if let Some((id, error)) = &failure {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(error_chain(error))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            metrics::counter!("lockbridge_outbox_published_total", "producer" => self.producer)
                .increment(sent.len() as u64);
            if let Some((_, error)) = failure {
                return Err(error);
            }
        }
        Ok(())
    }
}

impl Relay {
    /// The row with its sealed fields open, or why they cannot be.
    fn opened(&self, mut row: OutboxRow) -> Result<OutboxRow, (i64, RelayError)> {
        let Some(at_rest) = &self.at_rest else {
            return Ok(row);
        };
        let unopenable = |source: OpenError| {
            (
                row.id,
                RelayError::Unopenable {
                    event_id: row.event_id,
                    source,
                },
            )
        };
        let mut payload: serde_json::Value =
            serde_json::from_str(&row.payload).map_err(|e| unopenable(e.into()))?;
        at_rest.open(&mut payload).map_err(unopenable)?;
        row.payload = payload.to_string();
        Ok(row)
    }
}

fn message(row: &OutboxRow) -> OutgoingMessage<'_> {
    OutgoingMessage {
        exchange: &row.exchange,
        routing_key: &row.routing_key,
        event_id: row.event_id,
        correlation_id: row
            .correlation_id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or(row.event_id),
        traceparent: row.traceparent.as_deref(),
        payload: row.payload.as_bytes(),
    }
}
