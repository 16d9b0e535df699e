//! One pass over a dead-letter queue, the only way this command line touches one.
//!
//! Why a pass and not "get, then requeue": a dead-letter queue is a quorum queue with a
//! delivery limit (100) and no dead-letter exchange of its own, and a quorum queue counts every
//! message given back (a nack with requeue, a channel closed holding it) as a delivery. Listing
//! by get-and-requeue would age each message by one; the hundred-and-first listing would
//! silently drop it. So a pass takes each message with `basic.get` (which prefetches nothing:
//! the broker hands over exactly the message asked for) and settles it for good: a message kept
//! is published again, as it was, to the tail of the same queue, with publisher confirms and
//! `mandatory`, and the original is acknowledged only after the confirm; a message replayed is
//! published to its origin the same way before its acknowledgement; a message purged is just
//! acknowledged. The copy is a new message to the broker, so its count of deliveries starts
//! again at nothing: listing never brings a message nearer to its limit.
//!
//! A pass takes exactly as many messages as the queue held when it started, so it ends, and
//! the kept ones come back in their order (messages dead-lettered meanwhile land among them
//! and are left for the next pass). At every instant a message is in exactly one place: the
//! queue, or the queue and (for a moment, unacknowledged) its copy or replay. A crash between
//! the confirm and the acknowledgement leaves a duplicate, never a loss: the original returns
//! to the head of the queue (one delivery nearer its limit) beside its copy, and a replayed
//! duplicate is harmless to the consumers, which handle a message id (an event id) once.
//!
//! Two passes over one queue at once would each take some of the other's copies and list
//! messages twice; run one operator's command at a time per queue (the management UI's *Get
//! messages* requeues, and so ages messages, too).

use std::collections::BTreeMap;

use anyhow::Context;
use lapin::{
    BasicProperties, Channel,
    message::Delivery,
    options::{BasicAckOptions, BasicGetOptions},
    types::{AMQPValue, ShortString},
};
use lockbridge_runtime::amqp::{
    Broker, PublishError, Publisher, Route,
    dead_letter::{USER_ID_HEADER, carried_properties},
};

use super::letter::{DELIVERY_COUNT_HEADER, DeadLetter, Origin};

/// What to do with one message.
pub(crate) enum Verdict {
    Keep,
    /// Publish it to `origin` with `properties`, then take it out.
    Replay {
        origin: Origin,
        properties: Box<BasicProperties>,
    },
    Purge,
}

/// What was done with one message.
pub(crate) enum Done {
    Kept,
    Replayed,
    Purged,
    /// The replay was refused by the broker (unroutable, nacked): the message was kept.
    Refused(PublishError),
}

/// Takes the messages `queue` holds now, one by one, and does with each what `decide` says.
/// Answers each message with what was done.
pub(crate) async fn run(
    broker: &Broker,
    publisher: &mut Publisher,
    queue: &str,
    mut decide: impl FnMut(&DeadLetter, &Delivery) -> Verdict,
) -> anyhow::Result<Vec<(DeadLetter, Done)>> {
    let held = broker.message_count(queue).await?;
    let channel = broker.channel().await?;
    let mut done = Vec::new();
    for _ in 0..held {
        // Another client took some meanwhile: what is left is new, for the next pass.
        let Some(message) = get(&channel, queue).await? else {
            break;
        };
        let delivery = message.delivery;
        let letter = DeadLetter::read(queue, &delivery);
        let outcome = match decide(&letter, &delivery) {
            Verdict::Keep => {
                keep(publisher, queue, &delivery).await?;
                Done::Kept
            }
            Verdict::Replay { origin, properties } => {
                let route = Route {
                    exchange: &origin.exchange,
                    routing_key: &origin.routing_key,
                };
                match publisher
                    .publish_with(route, &delivery.data, *properties)
                    .await
                {
                    Ok(()) => Done::Replayed,
                    Err(refused @ (PublishError::Unroutable { .. } | PublishError::Nacked)) => {
                        keep(publisher, queue, &delivery).await?;
                        Done::Refused(refused)
                    }
                    Err(error) => {
                        return Err(error).context(format!(
                            "cannot replay {}; it stays in {queue}",
                            letter.id.as_deref().unwrap_or("a message without id")
                        ));
                    }
                }
            }
            Verdict::Purge => Done::Purged,
        };
        delivery
            .ack(BasicAckOptions::default())
            .await
            .with_context(|| {
                format!("cannot acknowledge a message of {queue}; it may now be there twice")
            })?;
        done.push((letter, outcome));
    }
    let _ = channel.close(200, "done".into()).await;
    Ok(done)
}

async fn get(
    channel: &Channel,
    queue: &str,
) -> anyhow::Result<Option<lapin::message::BasicGetMessage>> {
    channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .with_context(|| format!("cannot take a message of {queue}"))
}

/// Publishes `delivery` again, as it is, to the tail of `queue` (through the default exchange,
/// which routes by queue name). Its `user_id` moves to a header, as when it was dead-lettered:
/// RabbitMQ would check the property against this command line's user. The queue's delivery
/// count is left behind: it belongs to this delivery.
async fn keep(publisher: &mut Publisher, queue: &str, delivery: &Delivery) -> anyhow::Result<()> {
    let original = &delivery.properties;
    let mut headers: BTreeMap<ShortString, AMQPValue> = original
        .headers()
        .as_ref()
        .map(|headers| headers.inner().clone())
        .unwrap_or_default();
    headers.remove(DELIVERY_COUNT_HEADER);
    if let Some(user_id) = original.user_id() {
        headers
            .entry(USER_ID_HEADER.into())
            .or_insert_with(|| AMQPValue::LongString(user_id.as_str().into()));
    }
    let properties = carried_properties(original, headers.into());
    let route = Route {
        exchange: "",
        routing_key: queue,
    };
    publisher
        .publish_with(route, &delivery.data, properties)
        .await
        .with_context(|| format!("cannot put a message back in {queue}; it stays there unchanged"))
}
