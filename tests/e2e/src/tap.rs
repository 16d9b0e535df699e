use std::time::Duration;

use futures_util::StreamExt;
use lapin::{
    Channel, Consumer,
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use lockbridge_runtime::amqp::Broker;

/// Listens to everything published on an exchange, through a private queue bound with `#`,
/// so tests see the events exactly as other systems would; or takes a queue's messages.
pub struct Tap {
    consumer: Consumer,
    _broker: Broker,
}

impl Tap {
    pub async fn on(amqp_url: &str, exchange: &str) -> Self {
        let (broker, channel) = Self::connect(amqp_url).await;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare tap queue");
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind tap queue");
        Self::consume(broker, &channel, queue.name().as_str()).await
    }

    /// Takes the messages of one of the topology's queues (a dead-letter queue, say).
    pub async fn queue(amqp_url: &str, queue: &str) -> Self {
        let (broker, channel) = Self::connect(amqp_url).await;
        Self::consume(broker, &channel, queue).await
    }

    async fn connect(amqp_url: &str) -> (Broker, Channel) {
        let broker = Broker::connect(amqp_url.to_owned().into(), "test-tap")
            .await
            .expect("connect tap");
        let channel = broker.channel().await.expect("tap channel");
        lockbridge_runtime::amqp::topology::declare(&channel)
            .await
            .expect("declare topology");
        (broker, channel)
    }

    async fn consume(broker: Broker, channel: &Channel, queue: &str) -> Self {
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume tap queue");
        Self {
            consumer,
            _broker: broker,
        }
    }

    /// The next message, or `None` if none arrives within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Delivery> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .expect("tap delivery");
        delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack tap delivery");
        Some(delivery)
    }

    /// The next message's body as JSON; panics if none arrives within `wait`.
    pub async fn next_json(&mut self, wait: Duration) -> serde_json::Value {
        let delivery = self.next(wait).await.expect("an event was published");
        serde_json::from_slice(&delivery.data).expect("event body is JSON")
    }
}
