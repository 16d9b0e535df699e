//! `lockbridge dead-letters` against a real RabbitMQ (a virtual host of its own per test, the
//! real topology): messages dead-lettered by the broker (a consumer's reject, the delivery
//! limit) and by our consumer with a reason are listed without ageing, shown, replayed to
//! where they were published, purged; and what cannot be done is refused, changing nothing.

mod support;

use std::{process::Output, time::Duration};

use lapin::{
    BasicProperties, Channel,
    options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions},
};
use lockbridge_e2e::{TestBroker, system::TestSystem};
use lockbridge_runtime::amqp::{
    Broker, Publisher, Route,
    dead_letter::DeadLetters,
    topology::{self, INTAKE_BOOKINGS, INTAKE_EXCHANGE, NOTIFIER_PINS, PROVISIONER_BOOKINGS},
};
use serde_json::{Value, json};
use support::succeeded;
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(30);

/// Runs `lockbridge dead-letters args…` as an operator would, connected to `amqp_url`, with
/// `env` set too; the database it is given is unreachable, so it surely needs none.
fn lockbridge(amqp_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<&str> = ["dead-letters"].iter().chain(args).copied().collect();
    let mut env = env.to_vec();
    env.extend([
        ("LOCKBRIDGE__AMQP__URL", amqp_url),
        (
            "LOCKBRIDGE__DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        ),
    ]);
    support::lockbridge(&args, &env)
}

fn json_of(output: &Output) -> Value {
    serde_json::from_str(&succeeded(output)).expect("JSON")
}

/// Exit code 1 with one sentence naming `why`, nothing on stdout.
fn refused(output: &Output, why: &str) {
    support::refused(output, 1, why);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .lines()
            .count(),
        1
    );
}

/// A virtual host with the real topology, and the broker as the services have it (as
/// `guest`): a channel to take messages on, and a publisher.
struct Fixture {
    broker: TestBroker,
    runtime: Broker,
    channel: Channel,
    publisher: Mutex<Publisher>,
}

impl Fixture {
    async fn start() -> Self {
        let broker = TestBroker::create().await;
        let runtime = Broker::connect(broker.url.clone().into(), "test")
            .await
            .unwrap();
        let channel = runtime.channel().await.unwrap();
        topology::declare(&channel).await.unwrap();
        Self {
            broker,
            publisher: Mutex::new(Publisher::new(runtime.clone())),
            runtime,
            channel,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        lockbridge(&self.broker.url, args, &[])
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        id: &str,
        properties: BasicProperties,
    ) {
        let properties = properties
            .with_message_id(id.into())
            .with_content_type("application/json".into())
            .with_correlation_id(format!("corr-{id}").into())
            .with_delivery_mode(2);
        let body = json!({"event_id": id, "data": {"booking_id": id}});
        publish(&self.publisher, exchange, routing_key, &body, properties).await;
    }

    /// Publishes an event: its type is its routing key.
    async fn publish_event(&self, exchange: &str, event_type: &str, id: &str) {
        let properties = BasicProperties::default().with_type(event_type.into());
        self.publish(exchange, event_type, id, properties).await;
    }

    /// Takes the next message of `queue`, waiting for it.
    async fn get(&self, queue: &str) -> lapin::message::Delivery {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await
                .unwrap();
            if let Some(message) = got {
                return message.delivery;
            }
            assert!(tokio::time::Instant::now() < deadline, "nothing in {queue}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Messages in `queue` now (ready ones: nothing here holds any unacknowledged).
    async fn count(&self, queue: &str) -> u32 {
        self.runtime.message_count(queue).await.unwrap()
    }

    /// Dead-letters `id` by the broker: its consumer rejects it.
    async fn rejected(&self, id: &str) {
        self.publish_event("lockbridge.bookings", "booking.confirmed", id)
            .await;
        let delivery = self.get(PROVISIONER_BOOKINGS.name).await;
        delivery
            .reject(BasicRejectOptions { requeue: false })
            .await
            .unwrap();
    }

    /// Dead-letters `id` by the broker: given back more often than the delivery limit.
    async fn over_delivered(&self, id: &str) {
        self.publish_event("lockbridge.pins", "pin.issued", id)
            .await;
        for _ in 0..=NOTIFIER_PINS.delivery_limit {
            let delivery = self.get(NOTIFIER_PINS.name).await;
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    }

    /// Dead-letters `id` as booking-intake does, with a reason: published to the intake as
    /// `guest`, taken from its queue and sent on by the runtime's `DeadLetters`.
    async fn refused_by_intake(&self, id: &str) {
        self.publish(
            INTAKE_EXCHANGE,
            "booking.upsert",
            id,
            BasicProperties::default().with_user_id("guest".into()),
        )
        .await;
        let delivery = self.get(INTAKE_BOOKINGS.name).await;
        DeadLetters::new(self.runtime.clone(), INTAKE_BOOKINGS)
            .send(&delivery, "space_id: no such space")
            .await
            .unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }

    /// The three kinds, one in each dead-letter queue.
    async fn three_dead_letters(&self) {
        self.rejected("rejected-1").await;
        self.over_delivered("limited-1").await;
        self.refused_by_intake("intake-1").await;
    }

    fn list(&self) -> Value {
        json_of(&self.run(&["list", "--json"]))
    }

    fn ids(&self) -> Vec<String> {
        self.list()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The headers of a message taken from a work queue: none but the delivery count quorum
/// queues add to every delivery, which must be 0 (a fresh message, never given back).
/// Publishes with confirms and `mandatory`, as the services do.
async fn publish(
    publisher: &Mutex<Publisher>,
    exchange: &str,
    routing_key: &str,
    body: &Value,
    properties: BasicProperties,
) {
    let route = Route {
        exchange,
        routing_key,
    };
    let body = serde_json::to_vec(body).unwrap();
    publisher
        .lock()
        .await
        .publish_with(route, &body, properties)
        .await
        .expect("published and routed");
}

fn header_names(delivery: &lapin::message::Delivery) -> Vec<String> {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let mut names: Vec<String> = headers.inner().keys().map(ToString::to_string).collect();
    names.retain(|name| name != "x-delivery-count");
    if let Some(count) = headers.inner().get("x-delivery-count") {
        assert_eq!(count, &lapin::types::AMQPValue::LongLongInt(0));
    }
    names
}

fn dlq(queue: &topology::WorkQueue) -> String {
    queue.dead_letter_queue()
}

#[tokio::test]
async fn listing_150_times_leaves_every_message_as_it_was() {
    let fixture = Fixture::start().await;
    fixture.three_dead_letters().await;
    let listed = fixture.list();
    let messages = listed["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{listed:#}");
    let by_id = |id: &str| messages.iter().find(|m| m["id"] == id).unwrap().clone();
    let rejected = by_id("rejected-1");
    assert_eq!(rejected["queue"], dlq(&PROVISIONER_BOOKINGS));
    assert_eq!(rejected["type"], "booking.confirmed");
    assert_eq!(
        rejected["origin"],
        json!({"exchange": "lockbridge.bookings", "routing_key": "booking.confirmed"})
    );
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap()
            .starts_with("rejected by the consumer of lock-provisioner.bookings"),
        "{rejected}"
    );
    assert!(rejected["dead_lettered_at"].is_string(), "{rejected}");
    let limited = by_id("limited-1");
    assert_eq!(
        limited["reason"].as_str().unwrap(),
        "delivered 10 times from notifier.pins without being acknowledged (delivery limit): its \
         consumer failed or stopped each time"
    );
    let intake = by_id("intake-1");
    assert_eq!(intake["reason"], "space_id: no such space");
    assert_eq!(
        intake["origin"],
        json!({"exchange": INTAKE_EXCHANGE, "routing_key": "booking.upsert"})
    );
    assert_eq!(intake["published_by"], "guest");
    assert!(intake["dead_lettered_at"].is_string(), "{intake}");
    assert!(intake["size"].as_u64().unwrap() > 0);
    assert_eq!(
        listed["queues"],
        json!([
            {"queue": dlq(&PROVISIONER_BOOKINGS), "messages": 1},
            {"queue": dlq(&NOTIFIER_PINS), "messages": 1},
            {"queue": dlq(&INTAKE_BOOKINGS), "messages": 1},
        ])
    );
    let shown_before = json_of(&fixture.run(&["show", "limited-1", "--json"]));

    // Far more than the dead-letter queues' delivery limit (100).
    for _ in 0..150 {
        succeeded(&fixture.run(&["list", "--json", "--queue", "notifier.pins"]));
    }
    assert_eq!(fixture.list(), listed);
    assert_eq!(
        json_of(&fixture.run(&["show", "limited-1", "--json"])),
        shown_before
    );
    let headers = &shown_before[0]["properties"]["headers"];
    // Its delivery count, as this delivery of the dead-letter queue says: never given back.
    assert_eq!(headers["x-delivery-count"], 0, "{headers:#}");
    assert_eq!(
        headers["x-death"][0]["reason"], "delivery_limit",
        "{headers:#}"
    );
    assert_eq!(headers["x-death"][0]["queue"], NOTIFIER_PINS.name);

    let table = succeeded(&fixture.run(&["list"]));
    assert!(table.starts_with("QUEUE"), "{table}");
    assert!(
        table.contains("notifier.pins.dead-letter: 1 message(s)"),
        "{table}"
    );
    assert!(table.contains("space_id: no such space"), "{table}");
}

#[tokio::test]
async fn show_gives_headers_and_properties_and_the_body_only_when_asked() {
    let fixture = Fixture::start().await;
    fixture.refused_by_intake("intake-1").await;
    let shown = succeeded(&fixture.run(&["show", "intake-1"]));
    assert!(shown.contains("x-lockbridge-error"), "{shown}");
    assert!(shown.contains("\"corr-intake-1\""), "{shown}");
    assert!(
        shown.contains("not shown: it may hold a patron's address or a PIN (--body shows it)"),
        "{shown}"
    );
    assert!(
        !shown.contains("booking_id\": \"intake-1"),
        "no body without --body: {shown}"
    );
    let with_body = json_of(&fixture.run(&["show", "intake-1", "--body", "--json"]));
    assert_eq!(with_body[0]["body"]["data"]["booking_id"], "intake-1");
    assert_eq!(
        with_body[0]["properties"]["headers"]["x-lockbridge-user-id"],
        "guest"
    );
    // Moved to the header: RabbitMQ would check the property against the publisher's user.
    assert_eq!(with_body[0]["properties"]["user_id"], Value::Null);
}

#[tokio::test]
async fn replay_sends_a_message_back_where_it_was_published_as_it_was() {
    let fixture = Fixture::start().await;
    fixture.three_dead_letters().await;
    fixture.rejected("rejected-2").await;

    let before = fixture.list();
    let dry = succeeded(&fixture.run(&["replay", "rejected-1", "--dry-run"]));
    assert!(
        dry.contains("would replay") && dry.contains("lockbridge.bookings booking.confirmed"),
        "{dry}"
    );
    let dry_all = json_of(&fixture.run(&["replay", "--all", "--dry-run", "--json"]));
    assert_eq!(dry_all.as_array().unwrap().len(), 4, "{dry_all:#}");
    assert_eq!(fixture.list(), before, "dry runs change nothing");
    assert_eq!(fixture.count(PROVISIONER_BOOKINGS.name).await, 0);

    let replayed = json_of(&fixture.run(&["replay", "rejected-1", "--json"]));
    assert_eq!(
        replayed,
        json!([{
            "queue": dlq(&PROVISIONER_BOOKINGS), "id": "rejected-1", "outcome": "replayed",
            "to": {"exchange": "lockbridge.bookings", "routing_key": "booking.confirmed"}, "reason": null,
        }])
    );
    let delivery = fixture.get(PROVISIONER_BOOKINGS.name).await;
    assert_eq!(
        delivery.properties.message_id().as_ref().unwrap().as_str(),
        "rejected-1"
    );
    assert_eq!(
        delivery.properties.kind().as_ref().unwrap().as_str(),
        "booking.confirmed"
    );
    assert_eq!(
        delivery
            .properties
            .correlation_id()
            .as_ref()
            .unwrap()
            .as_str(),
        "corr-rejected-1"
    );
    assert_eq!(
        delivery
            .properties
            .content_type()
            .as_ref()
            .unwrap()
            .as_str(),
        "application/json"
    );
    assert_eq!(*delivery.properties.delivery_mode(), Some(2));
    assert_eq!(
        header_names(&delivery),
        Vec::<String>::new(),
        "no dead-letter headers"
    );
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(
        fixture.ids(),
        ["rejected-2", "limited-1", "intake-1"],
        "the others stay"
    );

    let all = json_of(&fixture.run(&["replay", "--all", "--json"]));
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|o| o["outcome"] == "replayed"),
        "{all:#}"
    );
    assert_eq!(fixture.ids(), Vec::<String>::new());
    let pin = fixture.get(NOTIFIER_PINS.name).await;
    assert_eq!(
        pin.properties.message_id().as_ref().unwrap().as_str(),
        "limited-1"
    );
    assert_eq!(header_names(&pin), Vec::<String>::new());
    // Replayed by the user that published it: booking-intake gives it the same source.
    let intake = fixture.get(INTAKE_BOOKINGS.name).await;
    assert_eq!(intake.routing_key.as_str(), "booking.upsert");
    assert_eq!(
        intake.properties.user_id().as_ref().unwrap().as_str(),
        "guest"
    );
    assert_eq!(header_names(&intake), Vec::<String>::new());
    assert_eq!(
        fixture
            .get(PROVISIONER_BOOKINGS.name)
            .await
            .properties
            .message_id()
            .as_ref()
            .unwrap()
            .as_str(),
        "rejected-2"
    );
}

#[tokio::test]
async fn purge_deletes_only_what_it_is_told_and_only_when_sure() {
    let fixture = Fixture::start().await;
    fixture.three_dead_letters().await;
    let before = fixture.list();
    refused(&fixture.run(&["purge", "limited-1"]), "add --yes");
    let dry = json_of(&fixture.run(&["purge", "limited-1", "--dry-run", "--json"]));
    assert_eq!(dry[0]["outcome"], "would purge");
    assert_eq!(fixture.list(), before);

    let purged = succeeded(&fixture.run(&["purge", "limited-1", "--yes"]));
    assert!(purged.contains("purged"), "{purged}");
    assert_eq!(fixture.ids(), ["rejected-1", "intake-1"]);
    succeeded(&fixture.run(&[
        "purge",
        "--all",
        "--yes",
        "--queue",
        "booking-intake.bookings",
    ]));
    assert_eq!(fixture.ids(), ["rejected-1"]);
    succeeded(&fixture.run(&["purge", "--all", "--yes"]));
    assert_eq!(fixture.ids(), Vec::<String>::new());
}

#[tokio::test]
async fn what_cannot_be_done_is_refused_and_changes_nothing() {
    let fixture = Fixture::start().await;
    fixture.three_dead_letters().await;
    // Put straight into a dead-letter queue: nothing says where it came from.
    fixture
        .publish(
            "",
            &dlq(&PROVISIONER_BOOKINGS),
            "orphan-1",
            BasicProperties::default(),
        )
        .await;
    let before = fixture.list();

    for unknown_id in [
        &["show", "nope"][..],
        &["replay", "rejected-1", "nope"],
        &["purge", "nope", "--yes"],
    ] {
        refused(&fixture.run(unknown_id), "there is no dead letter nope in");
    }
    refused(
        &fixture.run(&["list", "--queue", "nope"]),
        "there is no dead-letter queue nope; the queues are",
    );
    refused(
        &fixture.run(&["replay", "orphan-1", "rejected-1"]),
        "cannot replay orphan-1: where it came from is not known: it carries neither",
    );
    // Another RabbitMQ user would give the intake message another source (or none).
    let other = fixture.broker.create_user().await;
    refused(
        &lockbridge(&other.url, &["replay", "intake-1"], &[]),
        "it was published by RabbitMQ user guest, which intake.amqp_sources maps to no source: \
         replay it connected (amqp.url) as guest",
    );
    let mapped = [("LOCKBRIDGE__INTAKE__AMQP_SOURCES__GUEST", "libcal")];
    refused(
        &lockbridge(&other.url, &["replay", "intake-1"], &mapped),
        "whose bookings are source libcal: replay it connected (amqp.url) as guest or as \
         another user intake.amqp_sources maps to libcal",
    );
    refused(
        &lockbridge("amqp://guest:guest@127.0.0.1:1/%2f", &["list"], &[]),
        "cannot connect to RabbitMQ at amqp.url",
    );
    assert_eq!(fixture.list(), before);

    // --all replays what it can and says why it leaves the rest.
    let all = json_of(&fixture.run(&[
        "replay",
        "--all",
        "--json",
        "--queue",
        "lock-provisioner.bookings",
    ]));
    assert_eq!(all[0]["id"], "rejected-1");
    assert_eq!(all[0]["outcome"], "replayed");
    assert_eq!(all[1]["id"], "orphan-1");
    assert_eq!(all[1]["outcome"], "left");
    assert!(
        all[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("where it came from is not known"),
        "{all:#}"
    );
    assert_eq!(fixture.ids(), ["orphan-1", "limited-1", "intake-1"]);
}

/// The whole system: a booking published to the AMQP intake before its space exists is
/// dead-lettered; once the space is created, the replay is applied under the same source.
#[tokio::test]
async fn an_intake_message_replayed_keeps_its_source() {
    let system = TestSystem::start_with(
        remotelock_sim::SimConfig::default(),
        &[("intake.amqp_sources.guest", "libcal".to_owned())],
    )
    .await;
    let url = &system.broker.url;
    let broker = Broker::connect(url.clone().into(), "test").await.unwrap();
    let body = json!({
        "booking_id": "amqp-early",
        "space_id": "sp-101",
        "starts_at": "2027-01-12T14:00:00-05:00",
        "ends_at": "2027-01-12T15:00:00-05:00",
        "status": "confirmed",
        "patron": {"name": "Ada Lovelace", "email": lockbridge_e2e::system::unique_patron()},
    });
    let properties = BasicProperties::default()
        .with_message_id("early-1".into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_user_id("guest".into());
    let publisher = Mutex::new(Publisher::new(broker));
    publish(
        &publisher,
        INTAKE_EXCHANGE,
        "booking.upsert",
        &body,
        properties,
    )
    .await;
    let sources = [("LOCKBRIDGE__INTAKE__AMQP_SOURCES__GUEST", "libcal")];
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        let listed = json_of(&lockbridge(url, &["list", "--json"], &sources));
        if !listed["messages"].as_array().unwrap().is_empty() {
            break listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(listed["messages"][0]["id"], "early-1");
    assert!(
        listed["messages"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("space_id: no such space"),
        "{listed:#}"
    );

    let other = system.broker.create_user().await;
    refused(
        &lockbridge(&other.url, &["replay", "early-1"], &sources),
        "source libcal",
    );

    system.catalogue().await;
    let replayed = succeeded(&lockbridge(url, &["replay", "early-1"], &sources));
    assert!(replayed.contains("replayed"), "{replayed}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let source = loop {
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM bookings WHERE booking_id = 'amqp-early'")
                .fetch_optional(&system.db.pool)
                .await
                .unwrap();
        if let Some(source) = source {
            break source;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay was never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(source, "libcal");
    let claimed: (String, String) = sqlx::query_as(
        "SELECT source, message_id FROM intake_messages WHERE booking_id = 'amqp-early'",
    )
    .fetch_one(&system.db.pool)
    .await
    .unwrap();
    assert_eq!(claimed, ("libcal".to_owned(), "early-1".to_owned()));
    assert_eq!(
        json_of(&lockbridge(url, &["list", "--json"], &sources))["messages"],
        json!([])
    );
}
