//! The outbox relay on real PostgreSQL and RabbitMQ: an event the broker refuses waits out a
//! backoff with its reason kept, and never holds back the events behind it; an event with a
//! PIN rests sealed and leaves open.

use std::time::Duration;

use std::sync::Arc;

use lapin::options::BasicGetOptions;
use lockbridge_domain::events::{Envelope, EventType};
use lockbridge_e2e::{TestBroker, TestDatabase};
use lockbridge_runtime::{
    amqp::{Broker, topology},
    outbox::{self, Relay},
};
use lockbridge_sealing::pins::{PinKeySettings, PinSealer};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn pin_sealer(key: &str) -> PinSealer {
    PinKeySettings {
        encryption_key: SecretString::from(key),
        previous_encryption_key: None,
    }
    .sealer()
    .unwrap()
}

async fn published(db: &TestDatabase, id: i64) -> bool {
    sqlx::query_scalar("SELECT published_at IS NOT NULL FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// The outbox row of `event`, sealed by `sealer`, and its id.
async fn enqueue_sealed(db: &TestDatabase, sealer: &PinSealer, event: &Envelope<Value>) -> i64 {
    let mut tx = db.pool.begin().await.unwrap();
    outbox::enqueue_sealed(&mut tx, "test", event, sealer)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query_scalar("SELECT id FROM outbox WHERE event_id = $1")
        .bind(event.event_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pin_rests_sealed_in_the_outbox_and_leaves_open() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::create().await);
    let connection = Broker::connect(broker.url.clone().into(), "outbox-test")
        .await
        .unwrap();
    let channel = connection.channel().await.unwrap();
    topology::declare(&channel).await.unwrap();
    let sealer = pin_sealer("bG9ja2JyaWRnZS1vdXRib3gtdGVzdC1rZXktMzJieXQ=");
    let event = |pin: &str| {
        Envelope::new(
            EventType::PinIssued,
            uuid::Uuid::new_v4(),
            json!({"booking_id": "b-1", "pin": pin}),
        )
    };
    // Sealed under a key this relay does not have: it cannot be opened, so it is not sent.
    let stranger = pin_sealer("bG9ja2JyaWRnZS1vdGhlci10ZXN0LWtleS0zMmJ5dGU=");
    let unopenable = enqueue_sealed(&db, &stranger, &event("572981")).await;
    let issued = event("482193");
    let sealed = enqueue_sealed(&db, &sealer, &issued).await;

    let at_rest: String = sqlx::query_scalar("SELECT payload::text FROM outbox WHERE id = $1")
        .bind(sealed)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(!at_rest.contains("482193"), "{at_rest}");
    assert!(at_rest.contains("\"sealed:"), "{at_rest}");

    let shutdown = CancellationToken::new();
    let relay = Relay {
        pool: db.pool.clone(),
        broker: connection.clone(),
        producer: "test",
        at_rest: Some(Arc::new(sealer)),
    };
    let running = tokio::spawn(relay.run(shutdown.clone()));
    for _ in 0..100 {
        if published(&db, sealed).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published(&db, sealed).await, "the sealed event went out");
    let message = channel
        .basic_get(
            topology::NOTIFIER_PINS.name.into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the event is in the notifier's queue");
    let body: Value = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(body["data"]["pin"], "482193", "published open");
    assert_eq!(body["event_id"], issued.event_id.to_string());

    assert!(!published(&db, unopenable).await);
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox WHERE id = $1")
        .bind(unopenable)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let error = error.expect("the reason is kept");
    assert!(error.contains("pins.encryption_key"), "{error}");
    assert!(!error.contains("572981"));
    shutdown.cancel();
    running.await.unwrap();
    connection.close().await;
}

async fn insert(db: &TestDatabase, exchange: &str, routing_key: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO outbox (producer, event_id, exchange, routing_key, payload)
         VALUES ('test', gen_random_uuid(), $1, $2, '{}') RETURNING id",
    )
    .bind(exchange)
    .bind(routing_key)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_refused_event_does_not_hold_back_the_events_behind_it() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::create().await);
    let connection = Broker::connect(broker.url.clone().into(), "outbox-test")
        .await
        .unwrap();
    topology::declare(&connection.channel().await.unwrap())
        .await
        .unwrap();
    // No queue is bound for this key: RabbitMQ returns it.
    let refused = insert(&db, "lockbridge.pins", "pin.nobody-listens").await;
    let behind = insert(&db, "lockbridge.bookings", "booking.confirmed").await;
    let shutdown = CancellationToken::new();
    let relay = Relay {
        pool: db.pool.clone(),
        broker: connection.clone(),
        producer: "test",
        at_rest: None,
    };
    let running = tokio::spawn(relay.run(shutdown.clone()));

    for _ in 0..100 {
        if published(&db, behind).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published(&db, behind).await, "the event behind went out");
    assert!(!published(&db, refused).await);
    let (error, waits): (Option<String>, bool) =
        sqlx::query_as("SELECT last_error, retry_at > now() FROM outbox WHERE id = $1")
            .bind(refused)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("no queue is bound")),
        "{error:?}"
    );
    assert!(waits, "it waits out a backoff");
    shutdown.cancel();
    running.await.unwrap();
    connection.close().await;
}
