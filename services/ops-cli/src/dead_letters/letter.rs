//! What a dead letter says about itself: where it came from, why it was refused and when, read
//! from our `x-lockbridge-*` headers (booking-intake's dead letters) or else from the `x-death`
//! header RabbitMQ 3.10 adds when it dead-letters a message itself (a consumer's reject, or the
//! delivery limit): a list, most recent first, of tables with `reason` (`rejected`,
//! `delivery_limit`, `expired`, `maxlen`), `queue`, `exchange`, `routing-keys`, `count` and
//! `time`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties,
    message::Delivery,
    types::{AMQPValue, FieldTable, ShortString},
};
use lockbridge_runtime::amqp::{
    dead_letter::{
        DEAD_LETTERED_AT_HEADER, ERROR_HEADER, EXCHANGE_HEADER, HEADERS, ROUTING_KEY_HEADER,
        USER_ID_HEADER,
    },
    topology::WORK_QUEUES,
};
use serde::Serialize;
use serde_json::{Value, json};

/// What a quorum queue (3.10) adds to every message it delivers: how often it was given back
/// before. It belongs to that delivery, not to the message.
pub(crate) const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// The headers RabbitMQ adds when it dead-letters a message, and the delivery count, which a
/// replay removes with ours.
const BROKER_HEADERS: [&str; 5] = [
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    DELIVERY_COUNT_HEADER,
];

/// Where a message was first published, for a replay to publish it there again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Origin {
    pub exchange: String,
    pub routing_key: String,
}

/// One message of a dead-letter queue, as listed.
#[derive(Debug, Serialize)]
pub(crate) struct DeadLetter {
    pub queue: String,
    /// Its `message_id`; `None` when it has none (it can then be purged or replayed only with
    /// `--all`).
    pub id: Option<String>,
    /// Its AMQP `type` (the event type).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Where it came from, or why that is not known.
    #[serde(serialize_with = "origin_or_why")]
    pub origin: Result<Origin, String>,
    pub reason: String,
    pub dead_lettered_at: Option<DateTime<Utc>>,
    pub size: usize,
    /// The RabbitMQ user that published the original, which booking-intake maps to a source.
    pub published_by: Option<String>,
}

fn origin_or_why<S: serde::Serializer>(
    origin: &Result<Origin, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match origin {
        Ok(origin) => origin.serialize(serializer),
        Err(why) => json!({ "unknown": why }).serialize(serializer),
    }
}

impl DeadLetter {
    pub fn read(queue: &str, delivery: &Delivery) -> Self {
        let properties = &delivery.properties;
        let headers = Headers(properties.headers().as_ref());
        let death = headers.first_death();
        let text = |value: &Option<ShortString>| value.as_ref().map(ToString::to_string);
        Self {
            queue: queue.to_owned(),
            id: text(properties.message_id()),
            kind: text(properties.kind()),
            origin: headers.origin(death),
            reason: headers.reason(death),
            dead_lettered_at: headers
                .timestamp(DEAD_LETTERED_AT_HEADER)
                .or_else(|| death.and_then(|death| Headers(Some(death)).timestamp("time")))
                .and_then(|seconds| DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)),
            size: delivery.data.len(),
            published_by: headers
                .text(USER_ID_HEADER)
                .or_else(|| text(properties.user_id())),
        }
    }

    /// Whether `id` names it.
    pub fn is(&self, id: &str) -> bool {
        self.id.as_deref() == Some(id)
    }

    /// The type, else the routing key it was published with: what kind of message it is.
    pub fn what(&self) -> String {
        self.kind
            .clone()
            .or_else(|| self.origin.as_ref().ok().map(|o| o.routing_key.clone()))
            .unwrap_or_else(|| "?".to_owned())
    }
}

/// A message's headers, if it has any.
#[derive(Clone, Copy)]
struct Headers<'a>(Option<&'a FieldTable>);

impl<'a> Headers<'a> {
    fn get(self, name: &str) -> Option<&'a AMQPValue> {
        self.0?.inner().get(name)
    }

    fn text(self, name: &str) -> Option<String> {
        text(self.get(name)?)
    }

    fn timestamp(self, name: &str) -> Option<u64> {
        match self.get(name)? {
            AMQPValue::Timestamp(seconds) => Some(*seconds),
            _ => None,
        }
    }

    /// The most recent `x-death` entry: where the message was when RabbitMQ dead-lettered it.
    fn first_death(self) -> Option<&'a FieldTable> {
        match self.get("x-death")? {
            AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
                AMQPValue::FieldTable(death) => Some(death),
                _ => None,
            },
            _ => None,
        }
    }

    fn origin(self, death: Option<&FieldTable>) -> Result<Origin, String> {
        if let (Some(exchange), Some(routing_key)) =
            (self.text(EXCHANGE_HEADER), self.text(ROUTING_KEY_HEADER))
        {
            return Ok(Origin {
                exchange,
                routing_key,
            });
        }
        let death = Headers(Some(death.ok_or_else(|| {
            format!(
                "it carries neither {EXCHANGE_HEADER} and {ROUTING_KEY_HEADER} nor RabbitMQ's \
                 x-death header"
            )
        })?));
        let exchange = death
            .text("exchange")
            .ok_or("its x-death header names no exchange")?;
        let routing_key = match death.get("routing-keys") {
            Some(AMQPValue::FieldArray(keys)) => keys.as_slice().first().and_then(text),
            _ => None,
        }
        .ok_or("its x-death header names no routing key")?;
        // Published to the default exchange, a message was routed by its queue's name: the
        // same route finds the queue again.
        Ok(Origin {
            exchange,
            routing_key,
        })
    }

    fn reason(self, death: Option<&FieldTable>) -> String {
        if let Some(reason) = self.text(ERROR_HEADER) {
            return reason;
        }
        let Some(death) = death.map(|death| Headers(Some(death))) else {
            return "unknown: it carries no reason".to_owned();
        };
        let queue = death
            .text("queue")
            .unwrap_or_else(|| "its queue".to_owned());
        match death.text("reason").as_deref() {
            Some("delivery_limit") => {
                let limit = WORK_QUEUES
                    .iter()
                    .find(|work| work.name == queue)
                    .map_or_else(
                        || "too many".to_owned(),
                        |work| work.delivery_limit.to_string(),
                    );
                format!(
                    "delivered {limit} times from {queue} without being acknowledged (delivery \
                     limit): its consumer failed or stopped each time"
                )
            }
            Some("rejected") => format!(
                "rejected by the consumer of {queue} as poison (its log says why, with the \
                 message id)"
            ),
            Some("expired") => format!("expired in {queue} (message TTL)"),
            Some("maxlen") => format!("dropped from {queue}, which was full"),
            Some(other) => format!("dead-lettered from {queue}: {other}"),
            None => format!("dead-lettered from {queue}"),
        }
    }
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(text) => Some(String::from_utf8_lossy(text.as_bytes()).into_owned()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}

/// `headers` without the dead-letter headers, ours and RabbitMQ's: what the original carried.
pub(crate) fn original_headers(headers: Option<&FieldTable>) -> FieldTable {
    let kept: BTreeMap<ShortString, AMQPValue> = headers
        .map(FieldTable::inner)
        .into_iter()
        .flatten()
        .filter(|(name, _)| {
            !HEADERS.contains(&name.as_str()) && !BROKER_HEADERS.contains(&name.as_str())
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    kept.into()
}

/// Headers and properties as JSON, for `show`.
pub(crate) fn properties_json(properties: &BasicProperties) -> Value {
    let text = |value: &Option<ShortString>| value.as_ref().map(ToString::to_string);
    json!({
        "message_id": text(properties.message_id()),
        "type": text(properties.kind()),
        "correlation_id": text(properties.correlation_id()),
        "content_type": text(properties.content_type()),
        "content_encoding": text(properties.content_encoding()),
        "delivery_mode": properties.delivery_mode(),
        "timestamp": properties.timestamp(),
        "app_id": text(properties.app_id()),
        "user_id": text(properties.user_id()),
        "headers": properties.headers().as_ref().map(table_json),
    })
}

fn table_json(table: &FieldTable) -> Value {
    table
        .inner()
        .iter()
        .map(|(name, value)| (name.to_string(), value_json(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(value) => json!(value),
        AMQPValue::ShortShortInt(value) => json!(value),
        AMQPValue::ShortShortUInt(value) => json!(value),
        AMQPValue::ShortInt(value) => json!(value),
        AMQPValue::ShortUInt(value) => json!(value),
        AMQPValue::LongInt(value) => json!(value),
        AMQPValue::LongUInt(value) => json!(value),
        AMQPValue::LongLongInt(value) => json!(value),
        AMQPValue::Float(value) => json!(value),
        AMQPValue::Double(value) => json!(value),
        AMQPValue::DecimalValue(value) => {
            json!(f64::from(value.value) / 10f64.powi(value.scale.into()))
        }
        AMQPValue::Timestamp(seconds) => i64::try_from(*seconds)
            .ok()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .map_or_else(|| json!(seconds), |time| json!(time)),
        AMQPValue::FieldArray(values) => values.as_slice().iter().map(value_json).collect(),
        AMQPValue::FieldTable(table) => table_json(table),
        AMQPValue::ByteArray(bytes) => json!(String::from_utf8_lossy(bytes.as_slice())),
        AMQPValue::Void => Value::Null,
        text_value => json!(text(text_value)),
    }
}
