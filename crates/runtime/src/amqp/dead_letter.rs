//! Dead-lettering with a reason. RabbitMQ's own dead-lettering (a reject) cannot add a header,
//! so a consumer that must say why a message was refused publishes it to the queue's
//! dead-letter queue itself, with confirms, and acknowledges the original only after the
//! confirm: a message is in one queue or the other, never in none.

use lapin::{
    BasicProperties,
    message::Delivery,
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::Mutex;

use super::{
    Broker, PublishError, Publisher, Route,
    topology::{DEAD_LETTER_EXCHANGE, WorkQueue},
};

/// Why the message was refused: one sentence naming the field at fault.
pub const ERROR_HEADER: &str = "x-lockbridge-error";
/// Where the message was first published, for a replay to publish it there again.
pub const EXCHANGE_HEADER: &str = "x-lockbridge-exchange";
pub const ROUTING_KEY_HEADER: &str = "x-lockbridge-routing-key";
/// The publisher's `user_id`, moved to a header: RabbitMQ checks the property against the user
/// of the connection that publishes, which is now this consumer's.
pub const USER_ID_HEADER: &str = "x-lockbridge-user-id";
/// When it was dead-lettered (an AMQP timestamp, seconds), as RabbitMQ's `x-death` says `time`.
pub const DEAD_LETTERED_AT_HEADER: &str = "x-lockbridge-dead-lettered-at";

/// Every header a dead letter gains here, which a replay removes again.
pub const HEADERS: [&str; 5] = [
    ERROR_HEADER,
    EXCHANGE_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    DEAD_LETTERED_AT_HEADER,
];

/// The dead-letter queue of one work queue, published to through a confirm-mode channel.
pub struct DeadLetters {
    queue: WorkQueue,
    publisher: Mutex<Publisher>,
}

impl DeadLetters {
    pub fn new(broker: Broker, queue: WorkQueue) -> Self {
        Self {
            queue,
            publisher: Mutex::new(Publisher::new(broker)),
        }
    }

    /// Puts `delivery` in the dead-letter queue with `reason`; once this returns `Ok` the
    /// delivery may be acknowledged.
    pub async fn send(&self, delivery: &Delivery, reason: &str) -> Result<(), PublishError> {
        // Routed as RabbitMQ routes the queue's own dead letters.
        let route = Route {
            exchange: DEAD_LETTER_EXCHANGE,
            routing_key: self.queue.name,
        };
        let properties = dead_letter_properties(delivery, reason);
        self.publisher
            .lock()
            .await
            .publish_with(route, &delivery.data, properties)
            .await?;
        super::consume::dead_lettered(self.queue.name);
        Ok(())
    }
}

/// Sets one text property.
type WithText = fn(BasicProperties, ShortString) -> BasicProperties;

/// The original's properties and headers, plus the reason, the original route and the time.
fn dead_letter_properties(delivery: &Delivery, reason: &str) -> BasicProperties {
    let original = &delivery.properties;
    let mut headers = original.headers().clone().unwrap_or_default();
    let mut add = |name: &str, value: &str| {
        headers.insert(name.into(), AMQPValue::LongString(value.into()));
    };
    add(ERROR_HEADER, reason);
    add(EXCHANGE_HEADER, delivery.exchange.as_str());
    add(ROUTING_KEY_HEADER, delivery.routing_key.as_str());
    if let Some(user_id) = original.user_id() {
        add(USER_ID_HEADER, user_id.as_str());
    }
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    headers.insert(DEAD_LETTERED_AT_HEADER.into(), AMQPValue::Timestamp(now));
    carried_properties(original, headers)
}

/// What a message keeps when it is published again by someone else (to a dead-letter queue,
/// back to its queue, or replayed): `headers`, and the original's properties but `user_id`
/// (RabbitMQ checks it against the user that publishes, see [`USER_ID_HEADER`]) and
/// `expiration` (a dead letter waits for ops, however short-lived the original); always
/// persistent.
pub fn carried_properties(original: &BasicProperties, headers: FieldTable) -> BasicProperties {
    let mut properties = BasicProperties::default()
        .with_headers(headers)
        .with_delivery_mode(2);
    let copies: [(&Option<ShortString>, WithText); 6] = [
        (original.content_type(), BasicProperties::with_content_type),
        (
            original.content_encoding(),
            BasicProperties::with_content_encoding,
        ),
        (
            original.correlation_id(),
            BasicProperties::with_correlation_id,
        ),
        (original.message_id(), BasicProperties::with_message_id),
        (original.kind(), BasicProperties::with_type),
        (original.app_id(), BasicProperties::with_app_id),
    ];
    for (value, with) in copies {
        if let Some(value) = value {
            properties = with(properties, value.clone());
        }
    }
    if let Some(timestamp) = original.timestamp() {
        properties = properties.with_timestamp(*timestamp);
    }
    if let Some(priority) = original.priority() {
        properties = properties.with_priority(*priority);
    }
    properties
}
