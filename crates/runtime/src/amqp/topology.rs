//! Exchanges, queues and bindings (design §3.2, §3.5). Services declare all of it at start,
//! which is idempotent; `rabbitmq/definitions.json` describes the same and a test keeps them equal.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

use super::BrokerError;
use lockbridge_domain::events::{BOOKINGS_EXCHANGE, EventType, PINS_EXCHANGE};

/// Where rejected and over-delivered messages go, routed by the name of the queue they left.
pub const DEAD_LETTER_EXCHANGE: &str = "lockbridge.dead-letter";

/// Where upstream systems publish bookings for booking-intake (design §3.5).
pub const INTAKE_EXCHANGE: &str = "lockbridge.intake";

/// Topic exchanges carrying the events and the intake's messages, plus the dead-letter
/// exchange (direct).
pub const EXCHANGES: [(&str, ExchangeKind); 4] = [
    (BOOKINGS_EXCHANGE, ExchangeKind::Topic),
    (PINS_EXCHANGE, ExchangeKind::Topic),
    (INTAKE_EXCHANGE, ExchangeKind::Topic),
    (DEAD_LETTER_EXCHANGE, ExchangeKind::Direct),
];

/// A consumer's work queue: a durable quorum queue with a delivery limit and its own
/// dead-letter queue.
#[derive(Debug, Clone, Copy)]
pub struct WorkQueue {
    pub name: &'static str,
    pub exchange: &'static str,
    /// The routing keys it is bound to on `exchange`.
    pub bindings: &'static [&'static str],
    /// Deliveries (including requeues after a crash) before the message is dead-lettered.
    /// RabbitMQ 3.10 sets no default, so a poison message would otherwise loop forever.
    pub delivery_limit: i64,
}

pub const PROVISIONER_BOOKINGS: WorkQueue = WorkQueue {
    name: "lock-provisioner.bookings",
    exchange: BOOKINGS_EXCHANGE,
    bindings: &[
        EventType::BookingConfirmed.as_str(),
        EventType::BookingChanged.as_str(),
        EventType::BookingCancelled.as_str(),
    ],
    delivery_limit: 10,
};

pub const NOTIFIER_PINS: WorkQueue = WorkQueue {
    name: "notifier.pins",
    exchange: PINS_EXCHANGE,
    bindings: &[
        EventType::PinIssued.as_str(),
        EventType::PinRevoked.as_str(),
        EventType::PinFailed.as_str(),
    ],
    delivery_limit: 10,
};

/// Bound to every routing key: a message with an unknown one is dead-lettered with its
/// reason by booking-intake, not dropped unseen by the exchange.
pub const INTAKE_BOOKINGS: WorkQueue = WorkQueue {
    name: "booking-intake.bookings",
    exchange: INTAKE_EXCHANGE,
    bindings: &["#"],
    delivery_limit: 10,
};

pub const WORK_QUEUES: [WorkQueue; 3] = [PROVISIONER_BOOKINGS, NOTIFIER_PINS, INTAKE_BOOKINGS];

/// Dead-letter queues are where the line ends: ops list and replay them by hand. They are
/// quorum queues with a generous delivery limit and no dead-letter exchange of their own (a
/// second hop would only move the problem).
pub const DEAD_LETTER_DELIVERY_LIMIT: i64 = 100;

impl WorkQueue {
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letter", self.name)
    }

    pub fn arguments(&self) -> FieldTable {
        let mut arguments = quorum_arguments(self.delivery_limit);
        arguments.insert(
            "x-dead-letter-exchange".into(),
            string(DEAD_LETTER_EXCHANGE),
        );
        arguments.insert("x-dead-letter-routing-key".into(), string(self.name));
        // At-least-once dead-lettering: a message is kept until the dead-letter queue has it.
        // It requires reject-publish overflow.
        arguments.insert("x-dead-letter-strategy".into(), string("at-least-once"));
        arguments.insert("x-overflow".into(), string("reject-publish"));
        arguments
    }
}

pub fn dead_letter_arguments() -> FieldTable {
    quorum_arguments(DEAD_LETTER_DELIVERY_LIMIT)
}

fn quorum_arguments(delivery_limit: i64) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), string("quorum"));
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(delivery_limit),
    );
    arguments
}

fn string(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// Declares every exchange, queue and binding. Declaring what exists with the same arguments
/// is a no-op; different arguments fail loudly (PRECONDITION_FAILED) instead of drifting.
pub async fn declare(channel: &Channel) -> Result<(), BrokerError> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for (name, kind) in EXCHANGES {
        channel
            .exchange_declare(name.into(), kind, durable, FieldTable::default())
            .await
            .map_err(BrokerError::Topology)?;
    }
    let queue_options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for queue in WORK_QUEUES {
        channel
            .queue_declare(queue.name.into(), queue_options, queue.arguments())
            .await
            .map_err(BrokerError::Topology)?;
        for key in queue.bindings {
            bind(channel, queue.name, queue.exchange, key).await?;
        }
        let dead_letters = queue.dead_letter_queue();
        channel
            .queue_declare(
                dead_letters.as_str().into(),
                queue_options,
                dead_letter_arguments(),
            )
            .await
            .map_err(BrokerError::Topology)?;
        bind(channel, &dead_letters, DEAD_LETTER_EXCHANGE, queue.name).await?;
    }
    Ok(())
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), BrokerError> {
    channel
        .queue_bind(
            ShortString::from(queue),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(BrokerError::Topology)
}
