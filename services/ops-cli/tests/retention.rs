//! `lockbridge retention run [--dry-run]` against a real PostgreSQL: a dry run counts and
//! changes nothing, a run purges and prunes and says how many rows per table, a bad setting is
//! refused by name.

mod support;

use std::process::Output;

use lockbridge_e2e::TestDatabase;
use support::{refused, succeeded};

fn lockbridge(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![("LOCKBRIDGE__DATABASE__URL", database_url)];
    all.extend_from_slice(env);
    support::lockbridge(args, &all)
}

/// A booking that ended 40 days ago (with its PIN and email) and one that ends tomorrow, and
/// events handled 8 days ago and an hour ago.
async fn seed(db: &TestDatabase) {
    sqlx::raw_sql(
        "INSERT INTO locations (location_id, name, time_zone) VALUES ('main', 'Main', 'UTC');
         INSERT INTO categories (category_id, location_id, name) VALUES ('rooms', 'main', 'Rooms');
         INSERT INTO spaces (space_id, category_id, name, kind)
             VALUES ('sp-1', 'rooms', 'Room 1', 'bookable_as_whole');
         INSERT INTO bookings (booking_id, source, space_id, starts_at, ends_at, status,
                               patron_name, patron_email, correlation_id)
             VALUES ('b-old', 'libcal', 'sp-1', now() - interval '40 days 1 hour',
                     now() - interval '40 days', 'confirmed', 'Old Patron', 'old@example.edu',
                     gen_random_uuid()),
                    ('b-new', 'libcal', 'sp-1', now() + interval '1 day',
                     now() + interval '1 day 1 hour', 'confirmed', 'New Patron', 'new@example.edu',
                     gen_random_uuid());
         INSERT INTO booking_pins (booking_id, correlation_id, state, pin, guest_name)
             SELECT booking_id, correlation_id, 'issued', '482913', patron_name || ' · ' || booking_id
             FROM bookings;
         INSERT INTO sent_emails (booking_id, pin_version, event_id, recipient, message_id)
             SELECT booking_id, 1, gen_random_uuid(), patron_email, '<m@x>' FROM bookings;
         INSERT INTO processed_events (consumer, event_id, processed_at)
             VALUES ('notifier', gen_random_uuid(), now() - interval '8 days'),
                    ('notifier', gen_random_uuid(), now() - interval '1 hour');",
    )
    .execute(&db.pool)
    .await
    .unwrap();
}

async fn patrons(db: &TestDatabase) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT b.patron_name, s.recipient, p.pin FROM bookings b
         JOIN sent_emails s USING (booking_id) JOIN booking_pins p USING (booking_id)
         ORDER BY b.booking_id DESC -- b-old, then b-new",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_dry_run_counts_and_a_run_purges_and_prunes() {
    let db = TestDatabase::create().await;
    seed(&db).await;
    let before = patrons(&db).await;

    let dry = succeeded(&lockbridge(
        &db.url,
        &["retention", "run", "--dry-run", "--json"],
        &[],
    ));
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(dry["dry_run"], true);
    let rows = |answer: &serde_json::Value, table: &str, action: &str| {
        answer["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["table"] == table && c["action"] == action)
            .map(|c| c["rows"].as_u64().unwrap())
    };
    assert_eq!(rows(&dry, "bookings", "purged"), Some(1), "{dry}");
    assert_eq!(rows(&dry, "sent_emails", "purged"), Some(1), "{dry}");
    assert_eq!(rows(&dry, "processed_events", "deleted"), Some(1), "{dry}");
    assert_eq!(patrons(&db).await, before, "a dry run changes nothing");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(events, 2);

    let table = succeeded(&lockbridge(&db.url, &["retention", "run"], &[]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TABLE"), "{table}");
    let line = |table_name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(table_name))
            .unwrap_or_else(|| panic!("no {table_name} line: {table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("bookings"), ["bookings", "purged", "1"]);
    assert_eq!(line("booking_pins"), ["booking_pins", "purged", "1"]);
    assert_eq!(
        line("processed_events"),
        ["processed_events", "deleted", "1"]
    );
    assert!(table.ends_with("4 rows purged or deleted\n"), "{table}");
    assert_eq!(
        patrons(&db).await,
        [
            ("(purged)".to_owned(), "(purged)".to_owned(), None),
            (
                "New Patron".to_owned(),
                "new@example.edu".to_owned(),
                Some("482913".to_owned())
            ),
        ]
    );

    let again = succeeded(&lockbridge(
        &db.url,
        &["retention", "run", "--dry-run"],
        &[],
    ));
    assert!(
        again.ends_with("dry run: 0 rows are due; nothing was changed\n"),
        "{again}"
    );
}

#[tokio::test]
async fn a_run_while_another_pass_holds_the_lock_is_refused() {
    let db = TestDatabase::create().await;
    seed(&db).await;
    let mut holder = db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lockbridge_retention::pass::PASS_LOCK)
        .execute(&mut *holder)
        .await
        .unwrap();
    let output = lockbridge(&db.url, &["retention", "run"], &[]);
    refused(&output, 1, "another retention pass is running");
    let name: String =
        sqlx::query_scalar("SELECT patron_name FROM bookings WHERE booking_id = 'b-old'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(name, "Old Patron", "nothing was done");
}

/// Retention settings refused: the variable, its value and the setting the refusal names.
const BAD: [(&str, &str, &str); 5] = [
    ("LOCKBRIDGE__RETENTION__DAYS", "0", "retention.days"),
    ("LOCKBRIDGE__RETENTION__DAYS", "-5", "retention.days"),
    (
        "LOCKBRIDGE__RETENTION__PRUNE_AFTER",
        "a week",
        "retention.prune_after",
    ),
    (
        "LOCKBRIDGE__RETENTION__PRUNE_AFTER",
        "0s",
        "retention.prune_after",
    ),
    (
        "LOCKBRIDGE__RETENTION__INTERVAL",
        "hourly",
        "retention.interval",
    ),
];

#[tokio::test]
async fn bad_retention_settings_are_refused_by_name_before_anything_is_done() {
    let db = TestDatabase::create().await;
    seed(&db).await;
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/demo.toml");
    for (variable, value, named) in BAD {
        let output = lockbridge(&db.url, &["retention", "run"], &[(variable, value)]);
        refused(&output, 1, named);
        // The admin, which runs the passes, would not start either; the others would.
        let env = [(variable, value), ("LOCKBRIDGE_CONFIG", demo)];
        let output = lockbridge(&db.url, &["config", "check"], &env);
        assert_eq!(output.status.code(), Some(1));
        let verdicts = String::from_utf8_lossy(&output.stdout).into_owned();
        for line in verdicts.lines().skip(1) {
            let admin = line.starts_with("admin ");
            assert_eq!(
                line.contains(named),
                admin,
                "{variable}={value}: {verdicts}"
            );
            assert!(admin || line.ends_with(" ok"), "{verdicts}");
        }
    }
    let name: String =
        sqlx::query_scalar("SELECT patron_name FROM bookings WHERE booking_id = 'b-old'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(name, "Old Patron");
}
