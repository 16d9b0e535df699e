//! The AMQP intake (design §3.5, docs/amqp-intake.md): bookings published to
//! `lockbridge.intake` are read, ordered and stored exactly as the HTTP API's, once per
//! message id and source; a message refused for any reason is dead-lettered with the reason
//! in `x-lockbridge-error`.

use std::collections::BTreeMap;

use lockbridge_domain::BookingId;
use lockbridge_http::{
    input::{Fields, is_json_media_type, json_object},
    problem::Problem,
};
use lockbridge_runtime::amqp::{
    Delivery, Handler, HandlerError, dead_letter::DeadLetters, traceparent_of,
};
use lockbridge_sealing::pins::PinSealer;
use sqlx::{PgPool, Postgres, Transaction};

use crate::{
    auth::Source,
    batch::{Batch, Change, Request},
    bookings::{read_body, read_put},
};

/// The source of each RabbitMQ user allowed to publish bookings (`intake.amqp_sources`).
pub struct AmqpSources(BTreeMap<String, Source>);

#[derive(Debug, thiserror::Error)]
#[error(
    "intake.amqp_sources.{user} is empty; set it to the name of the source whose bookings \
     RabbitMQ user {user} publishes"
)]
pub(crate) struct UnnamedSource {
    user: String,
}

impl AmqpSources {
    pub(crate) fn new(configured: &BTreeMap<String, String>) -> Result<Self, UnnamedSource> {
        configured
            .iter()
            .map(|(user, source)| {
                if source.trim().is_empty() {
                    Err(UnnamedSource { user: user.clone() })
                } else {
                    Ok((user.clone(), Source(source.clone())))
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The message's source. RabbitMQ has checked that `user_id` is the publishing
    /// connection's user, so it can be trusted; a message without one is anybody's.
    fn of(&self, delivery: &Delivery) -> Result<Source, Problem> {
        let user = delivery.properties.user_id().as_ref().ok_or_else(|| {
            Problem::invalid_field(
                "user_id",
                "is required: publish with the user_id property set to your RabbitMQ user",
            )
        })?;
        self.0.get(user.as_str()).cloned().ok_or_else(|| {
            Problem::invalid_field(
                "user_id",
                format!(
                    "RabbitMQ user {user} is no source: map it with intake.amqp_sources.{user}"
                ),
            )
        })
    }
}

/// What a message asks, by its routing key.
enum Command {
    Upsert,
    Cancel,
}

impl Command {
    fn of(routing_key: &str) -> Result<Self, Problem> {
        match routing_key {
            "booking.upsert" => Ok(Self::Upsert),
            "booking.cancel" => Ok(Self::Cancel),
            other => Err(Problem::invalid_field(
                "routing_key",
                format!("{other} is neither booking.upsert nor booking.cancel"),
            )),
        }
    }
}

/// A message read and accepted for applying.
struct Message {
    source: Source,
    message_id: String,
    booking_id: BookingId,
    change: Change,
}

fn read(delivery: &Delivery, sources: &AmqpSources) -> Result<Message, Problem> {
    let source = sources.of(delivery)?;
    let properties = &delivery.properties;
    let message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            Problem::invalid_field(
                "message_id",
                "is required: it makes a repeat of the message harmless",
            )
        })?;
    if !properties
        .content_type()
        .as_ref()
        .is_some_and(|content_type| is_json_media_type(content_type.as_str()))
    {
        return Err(Problem::invalid_field(
            "content_type",
            "must be application/json",
        ));
    }
    let command = Command::of(delivery.routing_key.as_str())?;
    let body = json_object(&delivery.data)?;
    let (booking_id, change) = match command {
        Command::Upsert => read_body(&body, |fields| {
            let booking_id = read_booking_id(fields);
            let change = read_put(fields);
            Some((booking_id?, change?))
        })?,
        Command::Cancel => (read_body(&body, read_booking_id)?, Change::Cancel),
    };
    Ok(Message {
        source,
        message_id,
        booking_id,
        change,
    })
}

/// Over HTTP the id is in the path; here it is in the body.
fn read_booking_id(fields: &mut Fields<'_>) -> Option<BookingId> {
    fields.parsed("booking_id", |id| BookingId::parse(id))
}

/// The one sentence naming the field at fault that a refused message carries.
fn reason(problem: &Problem) -> String {
    if !problem.errors.is_empty() {
        // Already `field: detail`, for every field at fault.
        return problem.detail.clone();
    }
    // The one refusal naming no field: a cancel of a booking the source does not have.
    let field = problem.field.as_deref().unwrap_or("booking_id");
    format!("{field}: {}", problem.detail)
}

/// Claims the message for its source in the change's transaction: `false` when it was applied
/// before, so this is a repeat (a redelivery, or the publisher's replay) to change nothing by.
async fn claim(
    tx: &mut Transaction<'static, Postgres>,
    source: &Source,
    message_id: &str,
    booking_id: &BookingId,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO intake_messages (source, message_id, booking_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(&source.0)
    .bind(message_id)
    .bind(booking_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The consumer's handler of `booking-intake.bookings`.
pub(crate) struct AmqpIntake {
    pub pool: PgPool,
    /// Opens the PINs of the answers a batch makes (this consumer answers nobody, but the
    /// batch is the API's).
    pub pins: PinSealer,
    pub sources: AmqpSources,
    pub dead_letters: DeadLetters,
}

impl AmqpIntake {
    /// Applies the message; a refusal is `Poison` with its reason.
    async fn take(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let refused = |problem: Problem| HandlerError::Poison(reason(&problem));
        let Message {
            source,
            message_id,
            booking_id,
            change,
        } = read(delivery, &self.sources).map_err(refused)?;
        let requests = [Request {
            source,
            booking_id,
            change,
            trace: traceparent_of(delivery),
        }];
        let request = &requests[0];
        let mut batch = Batch::begin(&self.pool, &self.pins, &requests).await?;
        if !claim(
            batch.transaction(),
            &request.source,
            &message_id,
            &request.booking_id,
        )
        .await?
        {
            // Dropped, the transaction rolls back: it wrote nothing.
            tracing::info!(%message_id, source = request.source.0, "repeat of a message already applied");
            return Ok(());
        }
        let staged = batch.stage().await?;
        match &staged.answers()[0] {
            // A refusal rolls back with its claim, so the message can be replayed once fixed.
            Err(problem) => Err(refused(problem.clone())),
            Ok(_) => {
                staged.commit().await?;
                Ok(())
            }
        }
    }
}

impl Handler for AmqpIntake {
    /// A refused message is published to the dead-letter queue, beyond the transaction.
    const IN_BATCHES: bool = false;

    /// One booking's messages are applied in the order they came.
    fn lane(&self, delivery: &Delivery) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Keyed {
            booking_id: String,
        }
        serde_json::from_slice::<Keyed>(&delivery.data)
            .ok()
            .map(|keyed| keyed.booking_id)
    }

    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let reason = match self.take(delivery).await {
            Err(HandlerError::Poison(reason)) => reason,
            applied_or_retry => return applied_or_retry,
        };
        let message_id = delivery.properties.message_id().as_ref();
        tracing::warn!(?message_id, %reason, "intake message refused; dead-lettering it");
        // Acknowledged only once the dead-letter queue has it; until then it is retried.
        self.dead_letters
            .send(delivery, &reason)
            .await
            .map_err(|error| HandlerError::Retry(Box::new(error)))
    }
}
