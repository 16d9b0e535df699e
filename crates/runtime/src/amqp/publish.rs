//! Publishing with publisher confirms and `mandatory`: a message counts as sent only when the
//! broker acknowledged it AND routed it to at least one queue.

use lapin::{
    BasicProperties, Channel, PublisherConfirm,
    options::BasicPublishOptions,
    options::ConfirmSelectOptions,
    types::{AMQPValue, FieldTable},
};
use uuid::Uuid;

use super::{Broker, BrokerError};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("RabbitMQ failed the publish")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused the message (nack)")]
    Nacked,
    /// An earlier message of the batch found the channel failed, so this one was kept back.
    #[error("not sent: the channel failed before it")]
    NotSent,
    #[error(
        "RabbitMQ did not confirm the message within {0:?} (is it blocked by a resource alarm?)"
    )]
    NoConfirm(std::time::Duration),
    /// lapin reports an unroutable mandatory message as acked; the returned message says otherwise.
    #[error("no queue is bound for {exchange}/{routing_key}: {reply_code} {reply_text}")]
    Unroutable {
        exchange: String,
        routing_key: String,
        reply_code: u16,
        reply_text: String,
    },
}

/// W3C Trace Context over AMQP: the header carrying the trace an event belongs to.
pub const TRACEPARENT_HEADER: &str = "traceparent";

const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct OutgoingMessage<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub event_id: Uuid,
    pub correlation_id: Uuid,
    /// The W3C trace context, sent in the `traceparent` header when there is one.
    pub traceparent: Option<&'a str>,
    pub payload: &'a [u8],
}

impl OutgoingMessage<'_> {
    fn route(&self) -> Route<'_> {
        Route {
            exchange: self.exchange,
            routing_key: self.routing_key,
        }
    }
}

/// Where a message is published.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
}

/// A channel in confirm mode, reopened when it dies.
pub struct Publisher {
    broker: Broker,
    channel: Option<Channel>,
}

impl Publisher {
    pub fn new(broker: Broker) -> Self {
        Self {
            broker,
            channel: None,
        }
    }

    async fn channel(&mut self) -> Result<&Channel, PublishError> {
        if self
            .channel
            .as_ref()
            .is_none_or(|c| !c.status().connected())
        {
            let channel = self.broker.channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            self.channel = Some(channel);
        }
        Ok(self.channel.as_ref().expect("channel was just opened"))
    }

    /// Publishes one persistent JSON message and waits for its confirm.
    pub async fn publish(&mut self, message: &OutgoingMessage<'_>) -> Result<(), PublishError> {
        let mut results = self.publish_all(std::slice::from_ref(message)).await;
        results.pop().expect("one result per message")
    }

    /// Publishes the messages one after another without waiting, then waits for all their
    /// confirms at once: a batch costs about one round trip to the broker, not one each. The
    /// results are in the messages' order.
    pub async fn publish_all(
        &mut self,
        messages: &[OutgoingMessage<'_>],
    ) -> Vec<Result<(), PublishError>> {
        let mut sent = Vec::with_capacity(messages.len());
        for message in messages {
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(message.event_id.to_string().into())
                .with_correlation_id(message.correlation_id.to_string().into())
                .with_type(message.routing_key.into());
            let properties = match message.traceparent {
                Some(traceparent) => {
                    let mut headers = FieldTable::default();
                    headers.insert(
                        TRACEPARENT_HEADER.into(),
                        AMQPValue::LongString(traceparent.into()),
                    );
                    properties.with_headers(headers)
                }
                None => properties,
            };
            let confirm = self
                .send(message.route(), message.payload, properties)
                .await;
            // Once the channel failed, the rest would fail too: it is reopened next time.
            let failed = confirm.is_err();
            sent.push(confirm);
            if failed {
                break;
            }
        }
        let waits = sent
            .into_iter()
            .zip(messages)
            .map(|(sent, message)| async move { confirmed(sent?, message.route()).await });
        let mut results = futures_util::future::join_all(waits).await;
        results.resize_with(messages.len(), || Err(PublishError::NotSent));
        self.forget_failed_channel(&results);
        results
    }

    /// Publishes one message with the properties given, mandatory, and waits for its confirm.
    pub async fn publish_with(
        &mut self,
        route: Route<'_>,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let result = match self.send(route, payload, properties).await {
            Ok(confirm) => confirmed(confirm, route).await,
            Err(error) => Err(error),
        };
        self.forget_failed_channel(std::slice::from_ref(&result));
        result
    }

    /// Whatever state the channel is in after a failure of its own, the next publish starts on
    /// a fresh one.
    fn forget_failed_channel(&mut self, results: &[Result<(), PublishError>]) {
        if results.iter().any(|result| {
            matches!(
                result,
                Err(PublishError::Amqp(_) | PublishError::Broker(_) | PublishError::NoConfirm(_))
            )
        }) {
            self.channel = None;
        }
    }

    async fn send(
        &mut self,
        route: Route<'_>,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<PublisherConfirm, PublishError> {
        Ok(self
            .channel()
            .await?
            .basic_publish(
                route.exchange.into(),
                route.routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                payload,
                properties,
            )
            .await?)
    }
}

/// Waits for the broker's verdict on one message.
async fn confirmed(confirm: PublisherConfirm, route: Route<'_>) -> Result<(), PublishError> {
    // A broker under a memory or disk alarm blocks publishers without answering: give up
    // and retry later rather than hold the outbox rows (and shutdown) indefinitely.
    let confirm = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
        .await
        .map_err(|_| PublishError::NoConfirm(CONFIRM_TIMEOUT))??;
    if !confirm.is_ack() {
        return Err(PublishError::Nacked);
    }
    if let Some(returned) = confirm.take_message() {
        return Err(PublishError::Unroutable {
            exchange: route.exchange.to_owned(),
            routing_key: route.routing_key.to_owned(),
            reply_code: returned.reply_code,
            reply_text: returned.reply_text.to_string(),
        });
    }
    Ok(())
}
