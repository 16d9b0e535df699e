//! The consumer loop on real RabbitMQ: a handler that fails for a passing reason is retried
//! while the delivery is held — not requeued, which would spend the queue's delivery limit and
//! dead-letter accepted work during an outage.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lockbridge_e2e::TestBroker;
use lockbridge_runtime::amqp::{
    Broker, Consumer, Delivery, Handler, HandlerError, OutgoingMessage, Publisher,
    topology::{self, PROVISIONER_BOOKINGS},
};
use tokio_util::sync::CancellationToken;

/// Fails `failures` times as a database outage would, then succeeds; notes each attempt's
/// `redelivered` flag.
struct Flaky {
    failures: usize,
    attempts: Mutex<Vec<bool>>,
}

impl Handler for Flaky {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let mut attempts = self.attempts.lock().unwrap();
        attempts.push(delivery.redelivered);
        if attempts.len() <= self.failures {
            return Err(HandlerError::Retry("the database is restarting".into()));
        }
        Ok(())
    }
}

/// A broker of its own with the topology declared, and a connection to it.
async fn declared_broker() -> (TestBroker, Broker) {
    let broker = TestBroker::create().await;
    let connection = Broker::connect(broker.url.clone().into(), "consumer-test")
        .await
        .unwrap();
    topology::declare(&connection.channel().await.unwrap())
        .await
        .unwrap();
    (broker, connection)
}

/// A broker with the topology declared and one booking event waiting on the provisioner's
/// queue.
async fn one_waiting_event() -> (TestBroker, Broker) {
    let (broker, connection) = declared_broker().await;
    let id = uuid::Uuid::new_v4();
    Publisher::new(connection.clone())
        .publish(&OutgoingMessage {
            exchange: "lockbridge.bookings",
            routing_key: "booking.confirmed",
            event_id: id,
            correlation_id: id,
            traceparent: None,
            payload: b"{}",
        })
        .await
        .unwrap();
    (broker, connection)
}

/// Runs a consumer of the provisioner's queue with `handler`, one delivery at a time.
fn consume<H: Handler>(
    connection: &Broker,
    handler: &Arc<H>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let consumer = Consumer {
        broker: connection.clone(),
        queue: PROVISIONER_BOOKINGS,
        prefetch: 1,
        handler: handler.clone(),
    };
    (shutdown.clone(), tokio::spawn(consumer.run(shutdown)))
}

/// Waits until the queue `name` holds `count` messages, then says how many it holds.
async fn settle_count(broker: &TestBroker, name: &str, count: u64) -> serde_json::Value {
    for _ in 0..100 {
        if broker.queue(name).await["messages"] == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.queue(name).await["messages"].clone()
}

#[tokio::test]
async fn a_failing_handler_is_retried_holding_the_delivery_not_requeued() {
    let (broker, connection) = one_waiting_event().await;
    let handler = Arc::new(Flaky {
        failures: 3,
        attempts: Mutex::new(Vec::new()),
    });
    let (shutdown, running) = consume(&connection, &handler);
    for _ in 0..200 {
        if handler.attempts.lock().unwrap().len() > 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        *handler.attempts.lock().unwrap(),
        vec![false; 4],
        "one delivery, never redelivered"
    );

    // Acknowledged once handled: nothing left in the queue, nothing dead-lettered.
    assert_eq!(settle_count(&broker, PROVISIONER_BOOKINGS.name, 0).await, 0);
    assert_eq!(
        broker
            .queue(&PROVISIONER_BOOKINGS.dead_letter_queue())
            .await["messages"],
        0
    );
    shutdown.cancel();
    running.await.unwrap();
    connection.close().await;
}

/// Breaks a uniqueness constraint, as a handler with a bug or bad data would, every time.
struct Constrained {
    pool: sqlx::PgPool,
    attempts: Mutex<usize>,
}

impl Handler for Constrained {
    async fn handle(&self, _delivery: &Delivery) -> Result<(), HandlerError> {
        *self.attempts.lock().unwrap() += 1;
        sqlx::query("INSERT INTO processed_events (consumer, event_id) VALUES ('test', $1)")
            .bind(uuid::Uuid::nil())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_database_error_that_will_not_pass_dead_letters_instead_of_holding_the_queue() {
    let db = lockbridge_e2e::TestDatabase::create().await;
    sqlx::query("INSERT INTO processed_events (consumer, event_id) VALUES ('test', $1)")
        .bind(uuid::Uuid::nil())
        .execute(&db.pool)
        .await
        .unwrap();
    let (broker, connection) = one_waiting_event().await;
    let handler = Arc::new(Constrained {
        pool: db.pool.clone(),
        attempts: Mutex::new(0),
    });
    let (shutdown, running) = consume(&connection, &handler);
    let dead_letters = PROVISIONER_BOOKINGS.dead_letter_queue();
    assert_eq!(settle_count(&broker, &dead_letters, 1).await, 1);
    assert_eq!(settle_count(&broker, PROVISIONER_BOOKINGS.name, 0).await, 0);
    assert_eq!(*handler.attempts.lock().unwrap(), 1, "not retried");
    shutdown.cancel();
    running.await.unwrap();
    connection.close().await;
}

/// Notes every call: the batches it was given and, in order, what it handled for good; holds
/// each batch a moment so that deliveries pile up behind it. A body marked poison fails any
/// batch it is in, and itself.
#[derive(Default)]
struct Batching {
    batches: Mutex<Vec<Vec<String>>>,
    handled: Mutex<Vec<String>>,
    in_hand: Mutex<std::collections::HashSet<String>>,
    overlaps: Mutex<Vec<String>>,
}

fn label(delivery: &Delivery) -> (String, String, bool) {
    let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
    let booking = body["data"]["booking_id"].as_str().unwrap().to_owned();
    let seq = body["seq"].to_string();
    (
        format!("{booking}#{seq}"),
        booking,
        body["poison"].as_bool().unwrap_or(false),
    )
}

impl Batching {
    async fn work(&self, deliveries: &[Delivery]) -> Result<(), HandlerError> {
        let labels: Vec<_> = deliveries.iter().map(label).collect();
        for (_, booking, _) in &labels {
            if !self.in_hand.lock().unwrap().insert(booking.clone()) {
                self.overlaps.lock().unwrap().push(booking.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        for (_, booking, _) in &labels {
            self.in_hand.lock().unwrap().remove(booking);
        }
        self.batches
            .lock()
            .unwrap()
            .push(labels.iter().map(|(label, ..)| label.clone()).collect());
        if labels.iter().any(|(.., poison)| *poison) {
            return Err(HandlerError::Poison("marked poison".into()));
        }
        self.handled
            .lock()
            .unwrap()
            .extend(labels.into_iter().map(|(label, ..)| label));
        Ok(())
    }
}

impl Handler for Batching {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        self.work(std::slice::from_ref(delivery)).await
    }

    async fn handle_batch(&self, deliveries: &[Delivery]) -> Result<(), HandlerError> {
        self.work(deliveries).await
    }
}

#[tokio::test]
async fn deliveries_are_handled_in_batches_one_bookings_in_order_and_a_poison_one_alone() {
    let (broker, connection) = declared_broker().await;
    // Ten bookings with four events each, interleaved, and one poison event among them.
    let mut bodies = Vec::new();
    for seq in 0..4 {
        for booking in 0..10 {
            bodies.push(
                serde_json::json!({ "data": { "booking_id": format!("b-{booking}") }, "seq": seq }),
            );
        }
    }
    bodies.insert(
        17,
        serde_json::json!({ "data": { "booking_id": "p" }, "seq": 0, "poison": true }),
    );
    let payloads: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| serde_json::to_vec(b).unwrap())
        .collect();
    let ids: Vec<_> = payloads.iter().map(|_| uuid::Uuid::new_v4()).collect();
    let messages: Vec<_> = payloads
        .iter()
        .zip(&ids)
        .map(|(payload, id)| OutgoingMessage {
            exchange: "lockbridge.bookings",
            routing_key: "booking.confirmed",
            event_id: *id,
            correlation_id: *id,
            traceparent: None,
            payload,
        })
        .collect();
    for result in Publisher::new(connection.clone())
        .publish_all(&messages)
        .await
    {
        result.unwrap();
    }

    let handler = Arc::new(Batching::default());
    let shutdown = CancellationToken::new();
    let consumer = Consumer {
        broker: connection.clone(),
        queue: PROVISIONER_BOOKINGS,
        prefetch: 16,
        handler: handler.clone(),
    };
    let running = tokio::spawn(consumer.run(shutdown.clone()));
    for _ in 0..200 {
        if handler.handled.lock().unwrap().len() == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settle_count(&broker, PROVISIONER_BOOKINGS.name, 0).await, 0);
    assert_eq!(
        broker
            .queue(&PROVISIONER_BOOKINGS.dead_letter_queue())
            .await["messages"],
        1,
        "the poison event, and only it, dead-lettered"
    );
    shutdown.cancel();
    running.await.unwrap();
    connection.close().await;

    let handled = handler.handled.lock().unwrap().clone();
    assert_eq!(
        handled.len(),
        40,
        "each good event handled once: {handled:?}"
    );
    for booking in 0..10 {
        let order: Vec<_> = handled
            .iter()
            .filter(|label| label.starts_with(&format!("b-{booking}#")))
            .cloned()
            .collect();
        let expected: Vec<_> = (0..4).map(|seq| format!("b-{booking}#{seq}")).collect();
        assert_eq!(
            order, expected,
            "one booking's events in the order they came"
        );
    }
    let batches = handler.batches.lock().unwrap().clone();
    assert!(
        batches.iter().any(|batch| batch.len() > 1),
        "deliveries that waited were handled together: {batches:?}"
    );
    assert!(
        batches.iter().all(|batch| batch.len() <= 4),
        "a batch is at most a quarter of the prefetch: {batches:?}"
    );
    assert_eq!(
        *handler.overlaps.lock().unwrap(),
        Vec::<String>::new(),
        "no booking handled twice at once"
    );
}
