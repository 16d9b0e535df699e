//! The topology the services declare and `rabbitmq/definitions.json` must be the same thing.

use std::collections::BTreeSet;

use lockbridge_e2e::TestBroker;
use lockbridge_runtime::amqp::{Broker, topology};
use serde_json::Value;

/// (kind, name, normalized JSON) for every exchange, queue and binding, without the vhost.
fn normalize(exchanges: &Value, queues: &Value, bindings: &Value) -> BTreeSet<String> {
    let mut items = BTreeSet::new();
    for exchange in exchanges.as_array().expect("array") {
        let name = exchange["name"].as_str().unwrap_or_default();
        // The broker's own exchanges (amq.*, the default one) are not ours.
        if name.is_empty() || name.starts_with("amq.") {
            continue;
        }
        items.insert(format!(
            "exchange {name} type={} durable={} auto_delete={} internal={} arguments={}",
            exchange["type"],
            exchange["durable"],
            exchange["auto_delete"],
            exchange["internal"],
            exchange["arguments"]
        ));
    }
    for queue in queues.as_array().expect("array") {
        items.insert(format!(
            "queue {} durable={} auto_delete={} arguments={}",
            queue["name"], queue["durable"], queue["auto_delete"], queue["arguments"]
        ));
    }
    for binding in bindings.as_array().expect("array") {
        // The implicit binding of every queue to the default exchange.
        if binding["source"] == "" {
            continue;
        }
        items.insert(format!(
            "binding {} -> {} {} key={} arguments={}",
            binding["source"],
            binding["destination_type"],
            binding["destination"],
            binding["routing_key"],
            binding["arguments"]
        ));
    }
    items
}

#[tokio::test]
async fn declared_topology_matches_definitions_json() {
    let broker = TestBroker::create().await;
    let connection = Broker::connect(broker.url.clone().into(), "topology-test")
        .await
        .expect("connect");
    topology::declare(&connection.channel().await.expect("channel"))
        .await
        .expect("declare");
    // Declaring again is a no-op: services restart against an existing broker.
    topology::declare(&connection.channel().await.expect("channel"))
        .await
        .expect("declare twice");

    let declared = normalize(
        &broker.get("exchanges").await,
        &broker.get("queues").await,
        &broker.get("bindings").await,
    );
    let file: Value = serde_json::from_str(include_str!("../../../rabbitmq/definitions.json"))
        .expect("valid JSON");
    let defined = normalize(&file["exchanges"], &file["queues"], &file["bindings"]);
    assert_eq!(declared, defined);
    connection.close().await;
}

#[tokio::test]
async fn every_quorum_queue_has_a_delivery_limit_and_work_queues_a_dead_letter_queue() {
    let file: Value = serde_json::from_str(include_str!("../../../rabbitmq/definitions.json"))
        .expect("valid JSON");
    let queues = file["queues"].as_array().expect("queues");
    assert!(!queues.is_empty());
    for queue in queues {
        let arguments = &queue["arguments"];
        assert_eq!(arguments["x-queue-type"], "quorum", "{queue}");
        assert!(
            arguments["x-delivery-limit"]
                .as_i64()
                .is_some_and(|n| n > 0),
            "{queue}"
        );
        let name = queue["name"].as_str().expect("name");
        if !name.ends_with(".dead-letter") {
            assert_eq!(
                arguments["x-dead-letter-exchange"],
                topology::DEAD_LETTER_EXCHANGE,
                "{queue}"
            );
            let dead_letter_queue = format!("{name}.dead-letter");
            assert!(
                queues
                    .iter()
                    .any(|q| q["name"] == dead_letter_queue.as_str()),
                "{name} has no {dead_letter_queue}"
            );
        }
    }
}

#[tokio::test]
async fn an_unroutable_publish_is_a_failure_even_though_the_broker_acks_it() {
    use lockbridge_runtime::amqp::{OutgoingMessage, PublishError, Publisher};

    let broker = TestBroker::create().await;
    let connection = Broker::connect(broker.url.clone().into(), "unroutable-test")
        .await
        .expect("connect");
    let channel = connection.channel().await.expect("channel");
    channel
        .exchange_declare(
            "nobody-listens".into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("declare exchange");
    let mut publisher = Publisher::new(connection.clone());
    let id = uuid::Uuid::new_v4();
    let message = OutgoingMessage {
        exchange: "nobody-listens",
        routing_key: "booking.confirmed",
        event_id: id,
        correlation_id: id,
        traceparent: None,
        payload: b"{}",
    };
    let error = publisher
        .publish(&message)
        .await
        .expect_err("no queue is bound");
    assert!(
        matches!(
            error,
            PublishError::Unroutable {
                reply_code: 312,
                ..
            }
        ),
        "{error:?}"
    );

    // With the real topology the same publisher succeeds.
    topology::declare(&channel).await.expect("declare");
    let routed = OutgoingMessage {
        exchange: "lockbridge.bookings",
        ..message
    };
    publisher
        .publish(&routed)
        .await
        .expect("routed publish is confirmed");
    connection.close().await;
}

#[tokio::test]
async fn the_intake_exchange_routes_every_routing_key_to_booking_intake() {
    let file: Value = serde_json::from_str(include_str!("../../../rabbitmq/definitions.json"))
        .expect("valid JSON");
    let intake = topology::INTAKE_EXCHANGE;
    assert!(
        file["exchanges"]
            .as_array()
            .expect("exchanges")
            .iter()
            .any(|e| e["name"] == intake && e["type"] == "topic" && e["durable"] == true),
        "{intake} is a durable topic exchange"
    );
    // Every key, so that one booking-intake does not know is dead-lettered with the reason
    // instead of dropped by the exchange.
    let bindings: Vec<_> = file["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .filter(|b| b["source"] == intake)
        .map(|b| (b["destination"].clone(), b["routing_key"].clone()))
        .collect();
    assert_eq!(
        bindings,
        [(
            Value::from(topology::INTAKE_BOOKINGS.name),
            Value::from("#")
        )]
    );
}
