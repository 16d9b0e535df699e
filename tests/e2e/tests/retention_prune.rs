//! Retention's rules one by one against a real PostgreSQL, without the services: what the
//! prune deletes and keeps, when a purge waits, batches on a large database, and passes that
//! run at once.

use lockbridge_e2e::TestDatabase;
use lockbridge_retention::{
    Action, Counts, Mode, RetentionSettings, pass::PASS_LOCK, run_exclusive,
};
use sqlx::PgPool;

/// 30 days, pruning after 7 (the committed defaults).
fn policy() -> RetentionSettings {
    lockbridge_e2e::services::settings::<admin::Sections>(&[])
        .own
        .retention
}

async fn pass(pool: &PgPool) -> Counts {
    run_exclusive(pool, &policy(), Mode::Apply)
        .await
        .unwrap()
        .expect("no other pass runs")
}

async fn keys(pool: &PgPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
}

/// A location, category and space for bookings to stand in.
async fn catalogue(pool: &PgPool) {
    sqlx::raw_sql(
        "INSERT INTO locations (location_id, name, time_zone) VALUES ('main', 'Main', 'UTC');
         INSERT INTO categories (category_id, location_id, name) VALUES ('rooms', 'main', 'Rooms');
         INSERT INTO spaces (space_id, category_id, name, kind)
             VALUES ('sp-1', 'rooms', 'Room 1', 'bookable_as_whole');",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Bookings `prefix-1` … `prefix-n`, each ended `ended_ago` ago.
async fn bookings(pool: &PgPool, prefix: &str, n: i32, ended_ago: &str) {
    sqlx::query(
        "INSERT INTO bookings (booking_id, source, space_id, starts_at, ends_at, status,
                               patron_name, patron_email, correlation_id)
         SELECT $1 || '-' || i, 'libcal', 'sp-1', now() - $3::interval - interval '1 hour',
                now() - $3::interval, 'confirmed', 'Patron ' || i, 'p' || i || '@example.edu',
                gen_random_uuid()
         FROM generate_series(1, $2) AS i",
    )
    .bind(prefix)
    .bind(n)
    .bind(ended_ago)
    .execute(pool)
    .await
    .unwrap();
}

/// `n` events handled 8 days ago.
async fn handled_long_ago(pool: &PgPool, n: i32) {
    sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at)
         SELECT 'c', gen_random_uuid(), now() - interval '8 days' FROM generate_series(1, $1)",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn old_bookkeeping_goes_and_recent_or_still_needed_rows_stay() {
    let db = TestDatabase::create().await;
    let pool = &db.pool;
    sqlx::raw_sql(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES
             ('old', gen_random_uuid(), now() - interval '8 days'),
             ('recent', gen_random_uuid(), now() - interval '6 days');
         INSERT INTO outbox (producer, event_id, exchange, routing_key, payload, created_at, published_at)
             VALUES ('old', gen_random_uuid(), 'x', 'k', '{}', now() - interval '9 days', now() - interval '8 days'),
                    ('recent', gen_random_uuid(), 'x', 'k', '{}', now() - interval '9 days', now() - interval '1 hour'),
                    ('unsent', gen_random_uuid(), 'x', 'k', '{}', now() - interval '30 days', NULL);
         INSERT INTO jobs (queue, job_key, payload, priority_at, state, updated_at) VALUES
             ('provision', 'old-succeeded', '{}', now(), 'succeeded', now() - interval '8 days'),
             ('provision', 'recent-succeeded', '{}', now(), 'succeeded', now() - interval '1 day'),
             ('provision', 'old-failed-unclaimed', '{}', now(), 'failed', now() - interval '8 days'),
             ('provision', 'old-failed-resolved', '{}', now(), 'failed', now() - interval '8 days'),
             ('provision', 'old-failed-open', '{}', now(), 'failed', now() - interval '8 days'),
             ('email', 'old-failed-queue-open', '{}', now(), 'failed', now() - interval '8 days'),
             ('email', 'old-succeeded-queue-open', '{}', now(), 'succeeded', now() - interval '8 days'),
             ('provision', 'old-queued', '{}', now(), 'queued', now() - interval '8 days');
         INSERT INTO failures (kind, booking_id, reason, job_queue, job_key, resolved_at) VALUES
             ('pin_not_issued', 'b-1', 'refused', 'provision', 'old-failed-resolved', now()),
             ('pin_not_issued', 'b-2', 'refused', 'provision', 'old-failed-open', NULL),
             ('email_not_sent', NULL, 'the relay is down', 'email', NULL, NULL);
         INSERT INTO oauth_states (state, expires_at) VALUES
             ('expired', now() - interval '1 minute'), ('pending', now() + interval '5 minutes');
         INSERT INTO remotelock_events (event_id, kind, occurred_at, created_at, received_via,
                                        lock_id, booking_id, applied_at) VALUES
             ('old-lock', 'connectivity', now(), now(), 'poll', 'l-1', NULL, now() - interval '8 days'),
             ('recent-lock', 'connectivity', now(), now(), 'poll', 'l-1', NULL, now() - interval '1 day'),
             ('old-booking', 'unlocked', now(), now(), 'poll', 'l-1', 'b-1', now() - interval '8 days'),
             ('unapplied', 'unlocked', now(), now(), 'webhook', 'l-1', NULL, NULL);
         INSERT INTO staff_users (email, password_hash, role) VALUES ('desk@example.org', 'x', 'staff');
         INSERT INTO staff_sessions (token_sha256, user_id, csrf_token, expires_at)
             SELECT decode(repeat('aa', 32), 'hex'), user_id, 'c', now() - interval '1 second' FROM staff_users
             UNION ALL
             SELECT decode(repeat('bb', 32), 'hex'), user_id, 'c', now() + interval '1 hour' FROM staff_users;",
    )
    .execute(pool)
    .await
    .unwrap();
    let counts = pass(pool).await;
    for (table, rows) in [
        ("processed_events", 1),
        ("outbox", 1),
        ("jobs", 4),
        ("oauth_states", 1),
        ("staff_sessions", 1),
        ("remotelock_events", 1),
    ] {
        assert_eq!(
            counts.of(table, Action::Deleted),
            rows,
            "{table}: {counts:?}"
        );
    }
    assert_eq!(
        keys(pool, "SELECT consumer FROM processed_events").await,
        ["recent"]
    );
    assert_eq!(
        keys(
            pool,
            "SELECT event_id FROM remotelock_events ORDER BY event_id"
        )
        .await,
        ["old-booking", "recent-lock", "unapplied"],
        "a booking's activity and what is not applied yet stay"
    );
    assert_eq!(
        keys(pool, "SELECT producer FROM outbox ORDER BY producer").await,
        ["recent", "unsent"]
    );
    assert_eq!(
        keys(pool, "SELECT job_key FROM jobs ORDER BY job_key").await,
        [
            "old-failed-open",
            "old-failed-queue-open",
            "old-queued",
            "recent-succeeded"
        ]
    );
    assert_eq!(
        keys(pool, "SELECT state FROM oauth_states").await,
        ["pending"]
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM staff_sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
    assert_eq!(pass(pool).await.total(), 0, "nothing more is due");
}

#[tokio::test]
async fn a_booking_waits_while_a_job_runs_for_it_and_a_recent_one_is_left_alone() {
    let db = TestDatabase::create().await;
    let pool = &db.pool;
    catalogue(pool).await;
    bookings(pool, "ended", 1, "31 days").await;
    bookings(pool, "recent", 1, "29 days").await;
    sqlx::raw_sql(
        "INSERT INTO jobs (queue, job_key, payload, priority_at, state, lease_until)
             VALUES ('email', 'ended-1:1', '{\"data\": {\"booking_id\": \"ended-1\"}}', now(),
                     'running', now() + interval '2 minutes');",
    )
    .execute(pool)
    .await
    .unwrap();
    let counts = pass(pool).await;
    assert_eq!(counts.of("bookings", Action::Purged), 0, "{counts:?}");
    // The email went out; its job is done.
    sqlx::raw_sql("UPDATE jobs SET state = 'succeeded', lease_until = NULL")
        .execute(pool)
        .await
        .unwrap();
    let counts = pass(pool).await;
    assert_eq!(counts.of("bookings", Action::Purged), 1, "{counts:?}");
    assert_eq!(counts.of("jobs", Action::Deleted), 1, "{counts:?}");
    assert_eq!(
        keys(
            pool,
            "SELECT booking_id FROM bookings WHERE purged_at IS NULL"
        )
        .await,
        ["recent-1"]
    );
}

#[tokio::test]
async fn a_first_pass_on_a_large_database_goes_in_batches_and_misses_nothing() {
    let db = TestDatabase::create().await;
    let pool = &db.pool;
    catalogue(pool).await;
    bookings(pool, "old", 2_345, "40 days").await;
    handled_long_ago(pool, 2500).await;
    let dry = run_exclusive(pool, &policy(), Mode::DryRun)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dry.of("bookings", Action::Purged), 2_345, "{dry:?}");
    assert_eq!(
        dry.of("processed_events", Action::Deleted),
        2_500,
        "{dry:?}"
    );
    let unpurged = "SELECT booking_id FROM bookings WHERE purged_at IS NULL";
    assert_eq!(
        keys(pool, unpurged).await.len(),
        2_345,
        "a dry run changes nothing"
    );
    let counts = pass(pool).await;
    assert_eq!(counts, dry, "a run does what its dry run said");
    assert!(keys(pool, unpurged).await.is_empty());
}

#[tokio::test]
async fn passes_at_once_take_turns_and_count_each_row_once() {
    let db = TestDatabase::create().await;
    let pool = &db.pool;
    handled_long_ago(pool, 3000).await;
    // While one pass holds the lock, another does nothing and says so.
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PASS_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();
    assert!(
        run_exclusive(pool, &policy(), Mode::Apply)
            .await
            .unwrap()
            .is_none()
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PASS_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);
    // Two at once, as two admin processes would start them.
    let policy = policy();
    let (first, second) = tokio::join!(
        run_exclusive(pool, &policy, Mode::Apply),
        run_exclusive(pool, &policy, Mode::Apply),
    );
    let deleted: u64 = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .map(|counts| counts.of("processed_events", Action::Deleted))
        .sum();
    assert_eq!(deleted, 3_000);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
