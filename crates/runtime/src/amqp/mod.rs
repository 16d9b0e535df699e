//! RabbitMQ: one connection per process, the topology, confirmed publishing, a consumer loop
//! that acknowledges only after the handler's work is committed, and dead-lettering with a
//! reason.

mod consume;
pub mod dead_letter;
mod publish;
pub mod topology;

pub use consume::{Consumer, Handler, HandlerError, decode_envelope, event_type, traceparent_of};
pub use lapin::message::Delivery;
pub use publish::{OutgoingMessage, PublishError, Publisher, Route, TRACEPARENT_HEADER};

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::{
    Channel, Connection, ConnectionProperties, options::QueueDeclareOptions, types::FieldTable,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot connect to RabbitMQ at amqp.url")]
    Connect(#[source] lapin::Error),
    #[error("no answer from RabbitMQ at amqp.url within {0:?}")]
    ConnectTimeout(Duration),
    #[error("cannot open a RabbitMQ channel")]
    Channel(#[source] lapin::Error),
    #[error("cannot declare the RabbitMQ topology")]
    Topology(#[source] lapin::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("RabbitMQ does not say how many messages queue {0} holds (does it exist?)")]
    Declare(String, #[source] lapin::Error),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A shared, lazily re-established connection. Channels are cheap; connections are not.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    url: SecretString,
    name: String,
    connection: Mutex<Option<Connection>>,
    /// Set while a (re)connection is under way, for readiness to read without the lock.
    reconnecting: AtomicBool,
}

impl Broker {
    /// Connects once, so a wrong URL or a broker that is down fails start-up with a clear error.
    pub async fn connect(url: SecretString, name: &str) -> Result<Self, BrokerError> {
        let broker = Self {
            inner: Arc::new(Inner {
                url,
                name: name.to_owned(),
                connection: Mutex::new(None),
                reconnecting: AtomicBool::new(false),
            }),
        };
        broker.channel().await?;
        Ok(broker)
    }

    /// A new channel on the live connection, reconnecting first if the connection died.
    pub async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| c.status().connected()) {
            return connection
                .create_channel()
                .await
                .map_err(BrokerError::Channel);
        }
        // The connection name shows up in the management UI, so ops can tell services apart.
        let properties =
            ConnectionProperties::default().with_connection_name(self.inner.name.clone().into());
        // An unreachable host would otherwise hold this lock (and a shutdown) for the OS's
        // connect timeout.
        let connecting = Connection::connect(self.inner.url.expose_secret(), properties);
        self.inner.reconnecting.store(true, Ordering::Relaxed);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
        self.inner.reconnecting.store(false, Ordering::Relaxed);
        let connection = connected
            .map_err(|_| BrokerError::ConnectTimeout(CONNECT_TIMEOUT))?
            .map_err(BrokerError::Connect)?;
        let channel = connection
            .create_channel()
            .await
            .map_err(BrokerError::Channel)?;
        *slot = Some(connection);
        Ok(channel)
    }

    /// How many messages `queue` holds ready, by a passive declare: any user that may read
    /// the queue may ask, no management API needed. A passive declare that finds no queue
    /// closes its channel, so each count has a channel of its own.
    pub async fn message_count(&self, queue: &str) -> Result<u32, CountError> {
        let channel = self.channel().await?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| CountError::Declare(queue.to_owned(), error))?;
        Ok(declared.message_count())
    }

    pub fn is_connected(&self) -> bool {
        self.inner
            .connection
            .try_lock()
            .map(|slot| slot.as_ref().is_some_and(|c| c.status().connected()))
            // Someone holds the lock: to open a channel on a live connection (ready), or to
            // reconnect (not ready).
            .unwrap_or_else(|_| !self.inner.reconnecting.load(Ordering::Relaxed))
    }

    pub async fn close(&self) {
        if let Some(connection) = self.inner.connection.lock().await.take() {
            let _ = connection.close(200, "shutting down".into()).await;
        }
    }
}

/// Delays between reconnection attempts: exponential with jitter, capped at 30 s, forever.
pub fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}
