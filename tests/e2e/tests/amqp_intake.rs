//! The AMQP intake (design §3.5) against the real services, PostgreSQL, RabbitMQ, the
//! RemoteLock simulator and the SMTP inbox: bookings published to `lockbridge.intake` go the
//! way the HTTP API's go; every kind of invalid message lands in the dead-letter queue with
//! its reason and stores nothing; a repeated message id changes nothing.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    message::Delivery,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::AMQPValue,
};
use lockbridge_e2e::scrape::Scrape;
use lockbridge_e2e::{
    system::{TestSystem, unique_patron},
    tap::Tap,
};
use lockbridge_runtime::amqp::{
    dead_letter::{ERROR_HEADER, ROUTING_KEY_HEADER, USER_ID_HEADER},
    topology::{INTAKE_BOOKINGS, INTAKE_EXCHANGE},
};
use remotelock_sim::{PersonStatus, SimConfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The whole system, with the test's RabbitMQ user (`guest`) mapped to the HTTP API's source,
/// a publisher as that user, and the intake's dead-letter queue.
struct Harness {
    system: TestSystem,
    publisher: Publisher,
    dead_letters: Tap,
}

impl Harness {
    async fn start() -> Self {
        let system = TestSystem::start_with(
            SimConfig::default(),
            &[("intake.amqp_sources.guest", "libcal".to_owned())],
        )
        .await;
        let publisher = Publisher::connect(&system.broker.url).await;
        let dead_letters =
            Tap::queue(&system.broker.url, &INTAKE_BOOKINGS.dead_letter_queue()).await;
        Self {
            system,
            publisher,
            dead_letters,
        }
    }

    /// Publishes as `guest`, with its `user_id`.
    async fn publish(&self, routing_key: &str, message_id: &str, body: &Value) {
        let properties = json_properties().with_message_id(message_id.into());
        let body = serde_json::to_vec(body).unwrap();
        self.publisher
            .publish(routing_key, &body, properties.with_user_id("guest".into()))
            .await;
    }

    /// The next dead letter and its reason.
    async fn dead_letter(&mut self) -> (Delivery, String) {
        let delivery = self.dead_letters.next(WAIT).await.expect("a dead letter");
        let reason = header(&delivery, ERROR_HEADER).expect("the reason header");
        (delivery, reason)
    }

    /// A message that is surely refused, for `booking_id`: one booking's messages are handled
    /// in order, so once it is dead-lettered every message published before it for that
    /// booking has been handled.
    async fn barrier(&mut self, booking_id: &str) {
        let body = json!({"booking_id": booking_id, "starts_at": "soon"});
        self.publish("booking.upsert", &format!("barrier-{booking_id}"), &body)
            .await;
        let (delivery, reason) = self.dead_letter().await;
        assert_eq!(
            delivery.properties.message_id().as_ref().unwrap().as_str(),
            format!("barrier-{booking_id}")
        );
        assert!(reason.contains("starts_at"), "{reason}");
    }

    async fn count(&self, query: &str) -> i64 {
        sqlx::query_scalar(query)
            .fetch_one(&self.system.db.pool)
            .await
            .expect("count")
    }

    /// No booking, no event, no message claimed.
    async fn assert_nothing_stored(&self, what: &str) {
        for table in ["bookings", "outbox", "intake_messages"] {
            let query = format!("SELECT count(*) FROM {table}");
            assert_eq!(self.count(&query).await, 0, "{what}: nothing in {table}");
        }
    }

    /// The booking's events, as booking-intake wrote them.
    async fn booking_events(&self, booking_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT routing_key FROM outbox
             WHERE producer = 'booking-intake' AND payload->'data'->>'booking_id' = $1 ORDER BY id",
        )
        .bind(booking_id)
        .fetch_all(&self.system.db.pool)
        .await
        .expect("outbox readable")
    }
}

/// A confirm-mode channel of its own connection, publishing to `lockbridge.intake`.
struct Publisher {
    channel: Channel,
    _connection: Connection,
}

impl Publisher {
    async fn connect(url: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("connect publisher");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        Self {
            channel,
            _connection: connection,
        }
    }

    async fn publish(&self, routing_key: &str, body: &[u8], properties: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                INTAKE_EXCHANGE.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "the broker took {routing_key}");
        assert!(confirm.take_message().is_none(), "{routing_key} routed");
    }
}

/// JSON, persistent: the contract's properties, before `message_id` and `user_id`.
fn json_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

fn header(delivery: &Delivery, name: &str) -> Option<String> {
    match delivery.properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        other => panic!("{name} is {other:?}"),
    }
}

/// An upsert of `booking_id` in `sp-101`: Tuesday 2027-01-12 from `start` to `end` in New York.
fn upsert(booking_id: &str, start: &str, end: &str, email: &str) -> Value {
    json!({
        "booking_id": booking_id,
        "space_id": "sp-101",
        "starts_at": format!("2027-01-12T{start}:00-05:00"),
        "ends_at": format!("2027-01-12T{end}:00-05:00"),
        "status": "confirmed",
        "patron": {"name": "Ada Lovelace", "email": email},
    })
}

#[tokio::test]
async fn an_upsert_gets_a_pin_and_its_email_and_a_cancel_revokes_it() {
    let h = Harness::start().await;
    h.system.ready_with_link().await;
    let patron = unique_patron();
    h.publish(
        "booking.upsert",
        "m-1",
        &upsert("amqp-1", "14:00", "15:30", &patron),
    )
    .await;

    // The same source as the HTTP API's token: the booking is visible there.
    let issued = h.system.wait_for_pin("amqp-1", "issued", WAIT).await;
    let guests = h.system.guests_for("amqp-1");
    assert_eq!(guests.len(), 1, "{guests:?}");
    assert_eq!(guests[0].pin.as_deref(), issued["pin"]["pin"].as_str());
    let emails = h.system.mailbox.wait_for(&patron, 1, WAIT).await;
    assert!(emails[0].text.contains(guests[0].pin.as_deref().unwrap()));

    h.publish("booking.cancel", "m-2", &json!({"booking_id": "amqp-1"}))
        .await;
    h.system.wait_for_pin("amqp-1", "revoked", WAIT).await;
    let guests = h.system.guests_for("amqp-1");
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].status, PersonStatus::Deactivated);
    assert_eq!(
        h.booking_events("amqp-1").await,
        ["booking.confirmed", "booking.cancelled"]
    );
    assert_eq!(h.count("SELECT count(*) FROM intake_messages").await, 2);
}

#[tokio::test]
async fn each_kind_of_invalid_message_is_dead_lettered_with_its_reason_and_stores_nothing() {
    let mut h = Harness::start().await;
    h.system.catalogue().await;
    let valid = upsert("bad-1", "14:00", "15:30", "ada@example.edu");
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let mut without_email = valid.clone();
    without_email["patron"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    let bytes = |body: &Value| serde_json::to_vec(body).unwrap();
    let as_guest = || json_properties().with_user_id("guest".into());
    let with_id = |id: &str| as_guest().with_message_id(id.into());
    // (routing key, properties, body, the reason's start)
    let cases: Vec<(&str, BasicProperties, Vec<u8>, &str)> = vec![
        (
            "booking.upsert",
            with_id("not-json"),
            b"{\"booking_id\": ".to_vec(),
            "body: the body is not valid JSON",
        ),
        (
            "booking.upsert",
            with_id("not-object"),
            b"[1, 2]".to_vec(),
            "body: the body must be a JSON object",
        ),
        (
            "booking.upsert",
            with_id("bad-time"),
            bytes(&with("starts_at", json!("2027-01-12 14:00"))),
            "starts_at: must be an RFC 3339 time with an offset",
        ),
        (
            "booking.upsert",
            with_id("no-email"),
            bytes(&without_email),
            "patron.email: is required",
        ),
        (
            "booking.upsert",
            with_id("bad-status"),
            bytes(&with("status", json!("maybe"))),
            "status: must be one of tentative, confirmed, cancelled",
        ),
        (
            "booking.upsert",
            with_id("bad-revision"),
            bytes(&with("revision", json!(-1))),
            "revision: must be a non-negative integer",
        ),
        (
            "booking.upsert",
            with_id("no-booking-id"),
            bytes(&with("booking_id", Value::Null)),
            "booking_id: is required",
        ),
        (
            "booking.upsert",
            with_id("bad-booking-id"),
            bytes(&with("booking_id", json!("no spaces allowed"))),
            "booking_id: ",
        ),
        (
            "booking.upsert",
            with_id("unknown-space"),
            bytes(&with("space_id", json!("sp-999"))),
            "space_id: no such space",
        ),
        (
            "booking.cancel",
            with_id("unknown-booking"),
            bytes(&json!({"booking_id": "nobody-booked-this"})),
            "booking_id: no such booking",
        ),
        (
            "booking.cancel",
            with_id("cancel-without-id"),
            bytes(&json!({})),
            "booking_id: is required",
        ),
        (
            "booking.delete",
            with_id("unknown-routing-key"),
            bytes(&valid),
            "routing_key: booking.delete is neither booking.upsert nor booking.cancel",
        ),
        (
            "booking.upsert",
            as_guest(),
            bytes(&valid),
            "message_id: is required",
        ),
        (
            "booking.upsert",
            with_id("not-json-type").with_content_type("text/plain".into()),
            bytes(&valid),
            "content_type: must be application/json",
        ),
        (
            "booking.upsert",
            json_properties().with_message_id("no-user-id".into()),
            bytes(&valid),
            "user_id: is required",
        ),
    ];
    let refused = cases.len();
    for (routing_key, properties, body, expected) in cases {
        let message_id = properties.message_id().clone();
        h.publisher
            .publish(routing_key, &body, properties.clone())
            .await;
        let (dead, reason) = h.dead_letter().await;
        assert!(
            reason.starts_with(expected),
            "{message_id:?}: {reason:?} should start with {expected:?}"
        );
        // The message itself, as published, with where it was going.
        assert_eq!(dead.data, body, "{expected}");
        assert_eq!(dead.properties.message_id(), &message_id);
        assert_eq!(
            dead.properties.content_type(),
            properties.content_type(),
            "{expected}"
        );
        assert_eq!(dead.properties.delivery_mode(), &Some(2));
        assert_eq!(
            header(&dead, ROUTING_KEY_HEADER).as_deref(),
            Some(routing_key)
        );
        assert_eq!(
            header(&dead, USER_ID_HEADER),
            properties.user_id().as_ref().map(ToString::to_string)
        );
        h.assert_nothing_stored(expected).await;
    }
    let metrics = Scrape::of(&h.system.http, &h.system.intake.url("/metrics")).await;
    let queue = [("queue", INTAKE_BOOKINGS.name)];
    assert_eq!(
        metrics.value("lockbridge_deliveries_dead_lettered_total", &queue),
        Some(refused as f64)
    );
    assert_eq!(
        h.system.broker.queue(INTAKE_BOOKINGS.name).await["arguments"]["x-delivery-limit"],
        10
    );
}

#[tokio::test]
async fn a_message_from_a_user_that_is_no_source_is_refused() {
    let mut h = Harness::start().await;
    h.system.catalogue().await;
    let stranger = h.system.broker.create_user().await;
    let publisher = Publisher::connect(&stranger.url).await;
    let body = serde_json::to_vec(&upsert("stranger-1", "14:00", "15:00", "a@example.edu"));
    publisher
        .publish(
            "booking.upsert",
            &body.unwrap(),
            json_properties()
                .with_message_id("s-1".into())
                .with_user_id(stranger.name.as_str().into()),
        )
        .await;
    let (dead, reason) = h.dead_letter().await;
    assert_eq!(
        reason,
        format!(
            "user_id: RabbitMQ user {0} is no source: map it with intake.amqp_sources.{0}",
            stranger.name
        )
    );
    assert_eq!(header(&dead, USER_ID_HEADER), Some(stranger.name.clone()));
    h.assert_nothing_stored("a stranger's booking").await;
}

#[tokio::test]
async fn a_repeated_message_id_changes_nothing_even_after_a_newer_message() {
    let mut h = Harness::start().await;
    h.system.ready_with_link().await;
    let patron = unique_patron();
    let first = upsert("dup-1", "14:00", "15:30", &patron);
    // Published twice, as a publisher that lost the confirm would.
    h.publish("booking.upsert", "m-1", &first).await;
    h.publish("booking.upsert", "m-1", &first).await;
    h.barrier("dup-1").await;
    h.system.wait_for_pin("dup-1", "issued", WAIT).await;
    assert_eq!(h.count("SELECT count(*) FROM bookings").await, 1);
    assert_eq!(h.booking_events("dup-1").await, ["booking.confirmed"]);

    // A newer message moves the booking; then the first is replayed. It carries no revision,
    // so only its message id keeps it from moving the booking back.
    let moved = upsert("dup-1", "16:00", "17:00", &patron);
    h.publish("booking.upsert", "m-2", &moved).await;
    h.publish("booking.upsert", "m-1", &first).await;
    h.barrier("dup-1").await;
    let booking = h.system.get_booking("dup-1").await;
    assert_eq!(booking["starts_at"], "2027-01-12T21:00:00Z", "{booking}");
    assert_eq!(
        h.booking_events("dup-1").await,
        ["booking.confirmed", "booking.changed"]
    );
    assert_eq!(h.count("SELECT count(*) FROM intake_messages").await, 2);
    h.system.wait_for_outbox_drained(WAIT).await;
    assert_eq!(h.system.guests_for("dup-1").len(), 1, "one guest");
}

#[tokio::test]
async fn a_stale_revision_is_dead_lettered_and_changes_nothing() {
    let mut h = Harness::start().await;
    h.system.catalogue().await;
    let mut newer = upsert("rev-1", "14:00", "15:30", "ada@example.edu");
    newer["revision"] = json!(2);
    h.publish("booking.upsert", "r-2", &newer).await;
    let mut older = upsert("rev-1", "09:00", "10:00", "ada@example.edu");
    older["revision"] = json!(1);
    h.publish("booking.upsert", "r-1", &older).await;

    let (dead, reason) = h.dead_letter().await;
    assert_eq!(
        dead.properties.message_id().as_ref().unwrap().as_str(),
        "r-1"
    );
    assert_eq!(
        reason,
        "revision: revision 1 is older than the stored revision 2; nothing was changed"
    );
    let booking = h.system.get_booking("rev-1").await;
    assert_eq!(booking["revision"], 2);
    assert_eq!(booking["starts_at"], "2027-01-12T19:00:00Z");
    // Refused, so not claimed: only the applied message is.
    assert_eq!(h.count("SELECT count(*) FROM intake_messages").await, 1);
}

#[tokio::test]
async fn a_malformed_source_mapping_stops_intake_naming_the_setting() {
    use lockbridge_e2e::services;
    use lockbridge_runtime::{service::Service, telemetry::error_chain};

    // Nothing listens there: the mapping is checked before anything is connected.
    let database = (
        "database.url",
        "postgres://postgres@127.0.0.1:1/none".to_owned(),
    );
    let unnamed = services::settings(&[
        database.clone(),
        ("intake.amqp_sources.bridge", " ".to_owned()),
    ]);
    let refused = match booking_intake::Application::build(unnamed).await {
        Ok(_) => panic!("booking-intake started"),
        Err(error) => error.to_string(),
    };
    assert_eq!(
        refused,
        "intake.amqp_sources.bridge is empty; set it to the name of the source whose bookings \
         RabbitMQ user bridge publishes"
    );

    let not_a_table = services::layers(&[], &[database, ("intake.amqp_sources", "x".into())]);
    let refused = booking_intake::Settings::read(not_a_table).expect_err("not a table");
    let sentence = error_chain(&refused);
    assert!(sentence.contains("intake.amqp_sources"), "{sentence}");
}

#[tokio::test]
async fn a_messages_traceparent_header_is_continued_by_the_booking_event() {
    let h = Harness::start().await;
    h.system.catalogue().await;
    let mut bookings = Tap::on(&h.system.broker.url, "lockbridge.bookings").await;
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        "traceparent".into(),
        AMQPValue::LongString("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00".into()),
    );
    let properties = json_properties()
        .with_message_id("traced".into())
        .with_user_id("guest".into())
        .with_headers(headers);
    let body =
        serde_json::to_vec(&upsert("amqp-traced", "14:00", "15:00", &unique_patron())).unwrap();
    h.publisher
        .publish("booking.upsert", &body, properties)
        .await;
    let event = bookings.next(WAIT).await.expect("booking.confirmed");
    let traceparent = header(&event, "traceparent").expect("the event carries the trace");
    assert!(
        traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-")
            && traceparent.ends_with("-00")
            && !traceparent.contains("b7ad6b7169203331"),
        "the same trace, unsampled as it came, with a parent of its own: {traceparent}"
    );
}
