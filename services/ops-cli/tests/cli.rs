//! The `lockbridge` command line against a real PostgreSQL: each command's answer, and the
//! refusals of what it cannot do.

mod support;

use std::process::Output;

use lockbridge_e2e::TestDatabase;
use support::{refused, succeeded};

/// Runs `lockbridge args…` on `database_url`, as an operator would (configuration from the
/// repository's `config/`, the URL from the environment).
fn lockbridge(database_url: &str, args: &[&str]) -> Output {
    support::lockbridge(args, &[("LOCKBRIDGE__DATABASE__URL", database_url)])
}

#[tokio::test]
async fn outbox_status_counts_each_producers_unsent_and_refused_events() {
    let db = TestDatabase::create().await;
    sqlx::raw_sql(
        "INSERT INTO outbox (producer, event_id, exchange, routing_key, payload, created_at, published_at)
             VALUES ('booking-intake', gen_random_uuid(), 'x', 'k', '{}', now() - interval '1 hour', now());
         INSERT INTO outbox (producer, event_id, exchange, routing_key, payload, created_at)
             VALUES ('booking-intake', gen_random_uuid(), 'x', 'k', '{}', now() - interval '90 seconds'),
                    ('booking-intake', gen_random_uuid(), 'x', 'k', '{}', now());
         INSERT INTO outbox (producer, event_id, exchange, routing_key, payload, retry_at, last_error)
             VALUES ('lock-provisioner', gen_random_uuid(), 'x', 'k', '{}', now() + interval '1 minute',
                     'the broker refused it: unroutable');",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let json = succeeded(&lockbridge(&db.url, &["outbox", "status", "--json"]));
    let producers: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(producers[0]["producer"], "booking-intake");
    assert_eq!(producers[0]["unsent"], 2);
    assert_eq!(producers[0]["refused"], 0);
    let oldest = producers[0]["oldest_unsent_seconds"].as_f64().unwrap();
    assert!((90.0..150.0).contains(&oldest), "{oldest}");
    assert_eq!(producers[1]["producer"], "lock-provisioner");
    assert_eq!(producers[1]["refused"], 1);
    assert_eq!(
        producers[1]["last_error"],
        "the broker refused it: unroutable"
    );

    let table = succeeded(&lockbridge(&db.url, &["outbox", "status"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("PRODUCER"), "{table}");
    assert!(lines[1].starts_with("booking-intake"), "{table}");
    assert!(lines[2].contains("unroutable"), "{table}");
}

#[tokio::test]
async fn jobs_are_listed_retried_and_cancelled_and_what_cannot_be_is_refused() {
    let db = TestDatabase::create().await;
    sqlx::raw_sql(
        "INSERT INTO jobs (queue, job_key, payload, priority_at, state, attempts, last_error)
             VALUES ('provision', 'b-failed', '{}', now(), 'failed', 8, 'RemoteLock refused the PIN'),
                    ('provision', 'b-done', '{}', now(), 'succeeded', 1, NULL),
                    ('email', 'b-queued:1', '{}', now() + interval '1 day', 'queued', 0, NULL);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let listed = succeeded(&lockbridge(&db.url, &["jobs", "list"]));
    assert!(
        listed.contains("b-failed") && listed.contains("b-queued:1"),
        "{listed}"
    );
    assert!(
        !listed.contains("b-done"),
        "finished jobs are not listed: {listed}"
    );
    let failed = succeeded(&lockbridge(
        &db.url,
        &["jobs", "list", "--failed", "--json"],
    ));
    let failed: serde_json::Value = serde_json::from_str(&failed).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["key"], "b-failed");
    assert_eq!(failed[0]["last_error"], "RemoteLock refused the PIN");

    let retried = succeeded(&lockbridge(
        &db.url,
        &["jobs", "retry", "provision", "b-failed"],
    ));
    assert!(
        retried.contains("1 job(s) of provision will run again now"),
        "{retried}"
    );
    let state: (String, i32) =
        sqlx::query_as("SELECT state::text, attempts FROM jobs WHERE job_key = 'b-failed'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(state, ("queued".to_owned(), 0));

    let cancelled = succeeded(&lockbridge(
        &db.url,
        &["jobs", "cancel", "email", "b-queued:1"],
    ));
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    let state: (String, String) =
        sqlx::query_as("SELECT state::text, last_error FROM jobs WHERE job_key = 'b-queued:1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        state,
        ("failed".to_owned(), "cancelled by an operator".to_owned())
    );

    // What cannot be done changes nothing and says why.
    refused(
        &lockbridge(&db.url, &["jobs", "retry", "provision", "nope"]),
        1,
        "no such job to retry",
    );
    refused(
        &lockbridge(&db.url, &["jobs", "cancel", "provision", "b-done"]),
        1,
        "no queued or failed job b-done",
    );
    refused(
        &lockbridge(&db.url, &["jobs", "retry", "provision"]),
        2,
        "<KEY>",
    );
    let done: String = sqlx::query_scalar("SELECT state::text FROM jobs WHERE job_key = 'b-done'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(done, "succeeded");
}

#[tokio::test]
async fn migrate_brings_an_empty_database_up_to_date_and_an_unreachable_one_is_named() {
    let db = TestDatabase::create_empty().await;
    let migrated = succeeded(&lockbridge(&db.url, &["migrate"]));
    assert!(
        migrated.starts_with("the schema is up to date"),
        "{migrated}"
    );
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('bookings', 'jobs', 'outbox')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(tables, 3);
    // Nothing listens on port 1.
    refused(
        &lockbridge("postgres://postgres@127.0.0.1:1/nowhere", &["jobs", "list"]),
        1,
        "cannot connect to database.url",
    );
}

#[tokio::test]
async fn trace_tells_a_bookings_story_in_order_without_its_pin_or_patron() {
    let system = lockbridge_e2e::system::TestSystem::start().await;
    system.ready_with_link().await;
    let patron = system.book_confirmed("traced-ops").await;
    let wait = std::time::Duration::from_secs(60);
    let issued = system.wait_for_pin("traced-ops", "issued", wait).await;
    system.mailbox.wait_for(&patron, 1, wait).await;
    system.wait_for_emails_recorded("traced-ops", 1, wait).await;
    system.wait_for_outbox_drained(wait).await;
    // The door opened with it later (stored as tests/e2e/tests/door_events.rs shows).
    sqlx::query(
        "INSERT INTO remotelock_events (event_id, kind, occurred_at, created_at, received_via,
                                        status, lock_id, booking_id, applied_at)
         VALUES ('e-used', 'unlocked', now() + interval '1 hour', now(), 'webhook', 'succeeded',
                 'lock-1', 'traced-ops', now())",
    )
    .execute(&system.db.pool)
    .await
    .unwrap();

    let story = succeeded(&lockbridge(&system.db.url, &["trace", "traced-ops"]));
    let mut from = 0;
    for step in [
        "booking stored: confirmed",
        "event booking.confirmed",
        "written",
        "lock-provisioner",
        // The guest made, then the lock granted: each RemoteLock request, as it was answered.
        "POST /access_persons: 201 ok in",
        "POST /access_persons/",
        "PIN issued: PIN issued on lock",
        "event pin.issued",
        "PIN email (PIN version 1) sent",
        "lock lock-1 reported unlocked succeeded (by webhook)",
    ] {
        let found = story[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} after position {from}:\n{story}"));
        from += found;
    }
    for handled in ["lock-provisioner", "notifier"] {
        assert!(
            story
                .lines()
                .any(|l| l.contains(handled) && l.contains("handled")),
            "{handled} handled an event:\n{story}"
        );
    }
    let pin = issued["pin"]["pin"].as_str().unwrap();
    assert!(!story.contains(pin), "no PIN in a trace:\n{story}");
    assert!(!story.contains(&patron), "no address in a trace:\n{story}");

    let steps = succeeded(&lockbridge(
        &system.db.url,
        &["trace", "traced-ops", "--json"],
    ));
    let steps: serde_json::Value = serde_json::from_str(&steps).unwrap();
    assert_eq!(steps.as_array().unwrap().len(), story.lines().count() - 1);
    refused(
        &lockbridge(&system.db.url, &["trace", "no-such-booking"]),
        1,
        "no booking no-such-booking is stored",
    );
}
