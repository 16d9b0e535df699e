//! The outbox relay on real PostgreSQL and RabbitMQ: an event the broker refuses waits out a
//! backoff with its reason kept, and never holds back the events behind it.

use std::time::Duration;

use lockbridge_e2e::{TestBroker, TestDatabase};
use lockbridge_runtime::{
    amqp::{Broker, topology},
    outbox::Relay,
};
use tokio_util::sync::CancellationToken;

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
    };
    let running = tokio::spawn(relay.run(shutdown.clone()));

    let published = |id: i64| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT published_at IS NOT NULL FROM outbox WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    for _ in 0..100 {
        if published(behind).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published(behind).await, "the event behind went out");
    assert!(!published(refused).await);
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
