//! Tracing that follows a booking (issue 9): the work of a delivery and of a job runs in a span
//! naming the booking and the correlation id its events carry, so every line logged while
//! handling it — in any service — can be found by either.

use std::time::Duration;

use lockbridge_e2e::{logs::CapturedLogs, system::TestSystem};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn every_line_of_a_bookings_work_names_the_booking_and_its_correlation_id() {
    let logs = CapturedLogs::install();
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = system.book_confirmed("traced-1").await;
    system.wait_for_pin("traced-1", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    let correlation_id: uuid::Uuid =
        sqlx::query_scalar("SELECT correlation_id FROM bookings WHERE booking_id = 'traced-1'")
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    let correlation_id = correlation_id.to_string();
    // (what the line says, the span it is logged in)
    for (message, span) in [
        // The provisioner's consumer, handling the booking's event.
        ("booking event queued for provisioning", "delivery{"),
        // Its job, calling RemoteLock.
        ("RemoteLock guest created", "job{"),
        // The notifier's job, sending the PIN email.
        ("PIN email sent", "job{"),
    ] {
        let line = logs.wait_for_line(&[message], WAIT).await;
        assert!(
            line.contains(span),
            "{message}: in a {span}…}} span: {line}"
        );
        assert!(
            line.contains("traced-1"),
            "{message}: names the booking: {line}"
        );
        assert!(
            line.contains(&correlation_id),
            "{message}: names the correlation id: {line}"
        );
    }
}

const UPSTREAM: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The `traceparent` header of a message, and the one in its envelope.
fn traceparents(delivery: &lapin::message::Delivery) -> (Option<String>, Option<String>) {
    let header = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("traceparent").cloned())
        .map(|value| match value {
            lapin::types::AMQPValue::LongString(text) => text.to_string(),
            other => panic!("traceparent is a string, not {other:?}"),
        });
    let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
    let field = body["traceparent"].as_str().map(str::to_owned);
    (header, field)
}

#[tokio::test]
async fn an_upstream_trace_is_continued_by_every_event_and_named_in_every_services_lines() {
    let logs = CapturedLogs::install();
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let mut bookings =
        lockbridge_e2e::tap::Tap::on(&system.broker.url, "lockbridge.bookings").await;
    let mut pins = lockbridge_e2e::tap::Tap::on(&system.broker.url, "lockbridge.pins").await;
    let patron = lockbridge_e2e::system::unique_patron();
    let body = lockbridge_e2e::system::booking(
        "confirmed",
        "2027-01-12T14:00:00-05:00",
        "2027-01-12T15:00:00-05:00",
        &patron,
    );
    let response = system
        .intake_api()
        .request(reqwest::Method::PUT, "/v1/bookings/traced-2")
        .header("traceparent", UPSTREAM)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    system.mailbox.wait_for(&patron, 1, WAIT).await;

    let confirmed = bookings.next(WAIT).await.expect("booking.confirmed");
    let (header, field) = traceparents(&confirmed);
    let header = header.expect("the booking event carries the trace");
    assert_eq!(Some(&header), field.as_ref(), "header and envelope agree");
    // The same trace, this hop its parent: not the upstream's span.
    assert!(header.starts_with(&format!("00-{TRACE_ID}-")), "{header}");
    assert!(
        header.ends_with("-01"),
        "the sampled flag is kept: {header}"
    );
    assert_ne!(header, UPSTREAM);
    let issued = pins.next(WAIT).await.expect("pin.issued");
    let (pin_header, pin_field) = traceparents(&issued);
    let pin_header = pin_header.expect("the PIN event carries the trace");
    assert_eq!(Some(&pin_header), pin_field.as_ref());
    assert!(
        pin_header.starts_with(&format!("00-{TRACE_ID}-")),
        "{pin_header}"
    );
    assert_ne!(pin_header, header);

    for message in [
        "booking event queued for provisioning",
        "RemoteLock guest created",
        "PIN email sent",
    ] {
        let line = logs.wait_for_line(&[message, "traced-2"], WAIT).await;
        assert!(
            line.contains("trace_id") && line.contains(TRACE_ID),
            "{message}: names the upstream's trace: {line}"
        );
    }

    // A malformed header is ignored, as the specification asks: the booking is taken, and its
    // events start no trace.
    let response = system
        .intake_api()
        .request(reqwest::Method::PUT, "/v1/bookings/traced-3")
        .header("traceparent", "00-not-a-trace-01")
        .json(&lockbridge_e2e::system::booking(
            "confirmed",
            "2027-01-12T16:00:00-05:00",
            "2027-01-12T17:00:00-05:00",
            &lockbridge_e2e::system::unique_patron(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let untraced = bookings.next(WAIT).await.expect("booking.confirmed");
    assert_eq!(traceparents(&untraced), (None, None));
}
