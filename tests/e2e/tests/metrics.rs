//! Prometheus metrics (issue 9): every service answers `GET /metrics` without a token, and what
//! a booking's way through the system did shows up there — intake's outcomes, the outbox, the
//! deliveries, the jobs, RemoteLock's calls, the email and the intake → PIN / email latencies —
//! with labels of few values, never a booking id or a PIN. The backlog gauges are read from
//! the database when scraped.

use std::time::Duration;

use lockbridge_e2e::{
    scrape::Scrape,
    system::{TestSystem, booking},
};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_booking_on_its_way_through_is_counted_by_every_service() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = system.book_confirmed("metered-1").await;
    // Refusals are counted by what they were.
    let (status, _) = system
        .put("/v1/bookings/metered-2", &json!({"space_id": "sp-101"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let unauthorized = system
        .http
        .put(system.intake.url("/v1/bookings/metered-3"))
        .json(&booking(
            "confirmed",
            "2027-01-12T14:00:00-05:00",
            "2027-01-12T15:00:00-05:00",
            &patron,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let issued = system.wait_for_pin("metered-1", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    system.wait_for_outbox_drained(WAIT).await;

    let intake = Scrape::of(&system.http, &system.intake.url("/metrics")).await;
    let put = |outcome| [("operation", "put_booking"), ("outcome", outcome)];
    assert_eq!(
        intake.value("lockbridge_intake_requests_total", &put("accepted")),
        Some(1.0)
    );
    assert_eq!(
        intake.value("lockbridge_intake_requests_total", &put("invalid")),
        Some(1.0)
    );
    assert_eq!(
        intake.value("lockbridge_intake_requests_total", &put("unauthorized")),
        Some(1.0)
    );
    let producer = [("producer", "booking-intake")];
    assert_eq!(
        intake.value("lockbridge_outbox_published_total", &producer),
        Some(1.0)
    );
    assert_eq!(
        intake.value("lockbridge_outbox_unsent", &producer),
        Some(0.0)
    );

    let provisioner = system.provisioner.as_ref().expect("running");
    let provisioner = Scrape::of(&system.http, &provisioner.url("/metrics")).await;
    let bookings = [("queue", "lock-provisioner.bookings")];
    assert_eq!(
        provisioner.value("lockbridge_deliveries_consumed_total", &bookings),
        Some(1.0)
    );
    let acked = [("queue", "lock-provisioner.bookings"), ("outcome", "acked")];
    assert_eq!(
        provisioner.value("lockbridge_deliveries_settled_total", &acked),
        Some(1.0)
    );
    let succeeded = [("queue", "provision"), ("outcome", "succeeded")];
    assert_eq!(
        provisioner.value("lockbridge_job_runs_total", &succeeded),
        Some(1.0)
    );
    let create = [("endpoint", "POST /access_persons"), ("outcome", "ok")];
    assert_eq!(
        provisioner.value("lockbridge_remotelock_requests_total", &create),
        Some(1.0)
    );
    let grant = [
        ("endpoint", "POST /access_persons/:id/accesses"),
        ("outcome", "ok"),
    ];
    assert_eq!(
        provisioner.value("lockbridge_remotelock_requests_total", &grant),
        Some(1.0)
    );
    let create_latency = [("endpoint", "POST /access_persons")];
    assert_eq!(
        provisioner.value(
            "lockbridge_remotelock_request_duration_seconds_count",
            &create_latency
        ),
        Some(1.0)
    );
    assert!(
        provisioner
            .value("lockbridge_remotelock_budget_remaining", &[])
            .is_some()
    );
    assert_eq!(
        provisioner.value("lockbridge_intake_to_pin_seconds_count", &[]),
        Some(1.0)
    );
    for state in ["pending", "running", "retrying", "failed"] {
        let jobs = [("queue", "provision"), ("state", state)];
        assert_eq!(
            provisioner.value("lockbridge_jobs", &jobs),
            Some(0.0),
            "{state}"
        );
    }

    let sent = [("kind", "pin"), ("outcome", "sent")];
    let notifier = Scrape::once_reached(
        &system.http,
        &system.notifier.url("/metrics"),
        ("lockbridge_emails_total", &sent),
        1.0,
        WAIT,
    )
    .await;
    assert_eq!(
        notifier.value("lockbridge_intake_to_email_seconds_count", &[]),
        Some(1.0)
    );
    let pins = [("queue", "notifier.pins"), ("outcome", "acked")];
    assert_eq!(
        notifier.value("lockbridge_deliveries_settled_total", &pins),
        Some(1.0)
    );

    // The admin answers too, without its token.
    Scrape::of(&system.http, &system.admin.url("/metrics")).await;
    let pin = issued["pin"]["pin"].as_str().expect("the issued PIN");
    for scrape in [&intake, &provisioner, &notifier] {
        assert!(
            !scrape.text.contains("metered-1"),
            "no booking id in a label"
        );
        assert!(!scrape.text.contains(pin), "no PIN in the metrics");
        assert!(!scrape.text.contains(&patron), "no patron in the metrics");
    }
}

#[tokio::test]
async fn backlog_and_door_gauges_are_read_from_the_database_when_scraped() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    // A job that failed for good and an event the relay cannot send yet, ten minutes old; an
    // open authorization failure; a confirmed booking of the linked room starting in half an
    // hour with no PIN (stored without its event, so nothing works on it).
    sqlx::raw_sql(
        "INSERT INTO failures (kind, reason) VALUES ('authorization', 'RemoteLock refused');
         INSERT INTO bookings (booking_id, source, space_id, starts_at, ends_at, status,
                               patron_name, patron_email, correlation_id)
             VALUES ('due-soon', 'libcal', 'sp-101', now() + interval '30 minutes',
                     now() + interval '90 minutes', 'confirmed', 'Ada', 'ada@example.edu',
                     gen_random_uuid());
         INSERT INTO jobs (queue, job_key, payload, priority_at, state)
             VALUES ('provision', 'stuck-booking', '{}', now(), 'failed');
         INSERT INTO jobs (queue, job_key, payload, priority_at, run_at)
             VALUES ('email', 'later', '{}', now(), now() + interval '1 hour');
         INSERT INTO outbox (producer, event_id, exchange, routing_key, payload, created_at, retry_at)
             VALUES ('lock-provisioner', gen_random_uuid(), 'lockbridge.pins', 'pin.issued', '{}',
                     now() - interval '10 minutes', now() + interval '1 hour');",
    )
    .execute(&system.db.pool)
    .await
    .unwrap();
    let provisioner = system.provisioner.as_ref().expect("running");
    let provisioner = Scrape::of(&system.http, &provisioner.url("/metrics")).await;
    let failed = [("queue", "provision"), ("state", "failed")];
    assert_eq!(provisioner.value("lockbridge_jobs", &failed), Some(1.0));
    let pending = [("queue", "provision"), ("state", "pending")];
    assert_eq!(provisioner.value("lockbridge_jobs", &pending), Some(0.0));
    let producer = [("producer", "lock-provisioner")];
    assert_eq!(
        provisioner.value("lockbridge_outbox_unsent", &producer),
        Some(1.0)
    );
    let age = provisioner
        .value("lockbridge_outbox_oldest_unsent_age_seconds", &producer)
        .expect("the oldest unsent event's age");
    assert!((600.0..900.0).contains(&age), "{age}");

    let authorization = [("kind", "authorization")];
    assert_eq!(
        provisioner.value("lockbridge_failures_open", &authorization),
        Some(1.0)
    );
    let pin = [("kind", "pin_not_issued")];
    assert_eq!(
        provisioner.value("lockbridge_failures_open", &pin),
        Some(0.0)
    );
    assert_eq!(
        provisioner.value("lockbridge_pins_due_not_issued", &[]),
        Some(1.0)
    );

    let notifier = Scrape::of(&system.http, &system.notifier.url("/metrics")).await;
    let retrying = [("queue", "email"), ("state", "retrying")];
    assert_eq!(notifier.value("lockbridge_jobs", &retrying), Some(1.0));
}
