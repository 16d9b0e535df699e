//! Retention against the whole running system: a booking that went through the pipeline (PIN
//! issued, email sent) and ended `retention.days` ago keeps no personal data in any table,
//! while its booking row and counts, and every other booking, stay as they were.

use std::time::Duration;

use lockbridge_e2e::{
    logs::CapturedLogs,
    system::{TestSystem, unique_patron},
};
use lockbridge_retention::{Action, Counts, Mode, PURGED, RetentionSettings, run_exclusive};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const WAIT: Duration = Duration::from_secs(20);

/// The committed `[retention]` section: 30 days, pruning after 7.
fn committed() -> RetentionSettings {
    lockbridge_e2e::services::settings::<admin::Sections>(&[])
        .own
        .retention
}

/// One pass now; the admin's own passes (at its start, then hourly) may hold the lock a moment.
async fn pass(pool: &PgPool, mode: Mode) -> Counts {
    for _ in 0..100 {
        if let Some(counts) = run_exclusive(pool, &committed(), mode).await.unwrap() {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the retention lock was never free");
}

/// A patron no other booking has: a name and an address to look for everywhere.
struct Patron {
    name: String,
    email: String,
}

impl Patron {
    fn new() -> Self {
        let email = unique_patron();
        let name = format!("Retained {}", &email[7..19]);
        Self { name, email }
    }
}

/// Books `sp-101` for `patron` and waits for its PIN to be issued and emailed; answers the PIN.
async fn book_through_the_pipeline(
    system: &TestSystem,
    booking_id: &str,
    patron: &Patron,
    starts_at: &str,
    ends_at: &str,
) -> String {
    let body = json!({
        "space_id": "sp-101", "starts_at": starts_at, "ends_at": ends_at,
        "status": "confirmed", "patron": {"name": patron.name, "email": patron.email},
    });
    let (status, answer) = system
        .put(&format!("/v1/bookings/{booking_id}"), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let booking = system.wait_for_pin(booking_id, "issued", WAIT).await;
    system.wait_for_emails_recorded(booking_id, 1, WAIT).await;
    wait_until_settled(system).await;
    booking["pin"]["pin"]
        .as_str()
        .expect("an issued PIN")
        .to_owned()
}

/// Waits until every event written has been handled by its consumer and no job is due or
/// running: nothing is still on its way to a table a pass looks at.
async fn wait_until_settled(system: &TestSystem) {
    system.wait_for_outbox_drained(WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM outbox o
                     WHERE NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.event_id = o.event_id))
                  + (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running'))",
        )
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
        if busy == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the system never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every column of every table and view that can hold text (text, jsonb, bytea, arrays) in
/// which `needle` occurs, as `table.column`.
async fn everywhere(pool: &PgPool, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = 'public'
           AND data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea',
                             'ARRAY', 'USER-DEFINED', 'inet')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(columns.len() > 40, "the schema's text columns: {columns:?}");
    let mut found = Vec::new();
    for (table, column, data_type) in columns {
        let matches = if data_type == "bytea" {
            format!(r#"position(convert_to($1, 'UTF8') in "{column}") > 0"#)
        } else {
            format!(r#"strpos("{column}"::text, $1) > 0"#)
        };
        let hits: i64 = sqlx::query_scalar(&format!(
            r#"SELECT count(*) FROM "{table}" WHERE {matches}"#
        ))
        .bind(needle)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{table}.{column}: {e}"));
        if hits > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

async fn count(pool: &PgPool, sql: &str, booking_id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(booking_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_purged_booking_keeps_no_personal_data_in_any_table() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let pool = &system.db.pool;
    let (old, fresh) = (Patron::new(), Patron::new());
    let old_pin = book_through_the_pipeline(
        &system,
        "ret-old",
        &old,
        "2027-01-12T14:00:00-05:00",
        "2027-01-12T15:00:00-05:00",
    )
    .await;
    let fresh_pin = book_through_the_pipeline(
        &system,
        "ret-fresh",
        &fresh,
        "2027-01-13T14:00:00-05:00",
        "2027-01-13T15:00:00-05:00",
    )
    .await;
    // What the pipeline keeps only in some cases, written as each writer does: staff looked
    // at the PIN (admin), RemoteLock quoted the guest in an error (provisioner) and a failure
    // the patron's address (notifier), and the LibCal connector kept its copy of the booking.
    for booking_id in ["ret-old", "ret-fresh"] {
        let patron = if booking_id == "ret-old" {
            &old
        } else {
            &fresh
        };
        sqlx::query(
            "INSERT INTO staff_pin_viewings (booking_id, pin_version, email)
                 VALUES ($1, 1, 'desk@library.example');
             ",
        )
        .bind(booking_id)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO pin_history (booking_id, state, detail)
                 VALUES ($1, 'issued', 'RemoteLock refused the guest ' || $2 || ': name taken');",
        )
        .bind(booking_id)
        .bind(format!("{} · {booking_id}", patron.name))
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO failures (kind, booking_id, reason, resolved_at)
                 VALUES ('email_not_sent', $1, 'the relay refused <' || $2 || '>: mailbox full', now())",
        )
        .bind(booking_id)
        .bind(&patron.email)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO libcal_bookings (booking_id, book_id, location_id, starts_at, body,
                                          cancelled, revision, sent_revision)
                 VALUES ($1, 'cs_1', 8801, now(), $2, false, 1, 1)",
        )
        .bind(booking_id)
        .bind(json!({"space_id": "sp-101", "patron": {"name": patron.name, "email": patron.email}}))
        .execute(pool)
        .await
        .unwrap();
    }
    for needle in [&old.name, &old.email, &fresh.name, &fresh.email] {
        assert!(
            !everywhere(pool, needle).await.is_empty(),
            "the scan finds {needle} before the pass"
        );
    }
    // The PINs are sealed at rest (tests/pins_at_rest.rs): no scan finds them, before or after;
    // their sealed form is checked below.
    for pin in [&old_pin, &fresh_pin] {
        let found = everywhere(pool, pin).await;
        assert!(found.is_empty(), "{pin} is in clear in {found:?}");
    }
    // Time passes: the old booking ended 40 days ago. Moving it through the intake API would
    // make the provisioner act on it; retention only reads the end.
    sqlx::query(
        "UPDATE bookings SET starts_at = now() - interval '40 days 1 hour',
                             ends_at = now() - interval '40 days' WHERE booking_id = 'ret-old'",
    )
    .execute(pool)
    .await
    .unwrap();
    let emails = "SELECT count(*) FROM sent_emails WHERE booking_id = $1";
    let history = "SELECT count(*) FROM pin_history WHERE booking_id = $1";
    let kept_before = (
        count(pool, emails, "ret-old").await,
        count(pool, history, "ret-old").await,
    );
    let fresh_row = "SELECT row_to_json(b)::text FROM bookings b WHERE booking_id = $1";
    let fresh_before: String = sqlx::query_scalar(fresh_row)
        .bind("ret-fresh")
        .fetch_one(pool)
        .await
        .unwrap();

    let dry = pass(pool, Mode::DryRun).await;
    assert_eq!(dry.of("bookings", Action::Purged), 1, "{dry:?}");
    assert!(
        !everywhere(pool, &old.email).await.is_empty(),
        "a dry run changes nothing"
    );

    let counts = pass(pool, Mode::Apply).await;
    assert_eq!(counts.of("bookings", Action::Purged), 1, "{counts:?}");
    for (table, action) in [
        ("booking_pins", Action::Purged),
        ("sent_emails", Action::Purged),
        ("failures", Action::Purged),
        ("libcal_bookings", Action::Purged),
        ("staff_pin_viewings", Action::Deleted),
    ] {
        assert_eq!(counts.of(table, action), 1, "{table}: {counts:?}");
    }
    // The history line quoting the guest's name.
    assert_eq!(counts.of("pin_history", Action::Purged), 1, "{counts:?}");
    // booking.confirmed and pin.issued, and the PIN email's job.
    assert_eq!(counts.of("outbox", Action::Deleted), 2, "{counts:?}");
    assert!(counts.of("jobs", Action::Deleted) >= 1, "{counts:?}");
    assert!(
        counts.of("remotelock_calls", Action::Deleted) >= 1,
        "{counts:?}"
    );
    assert_eq!(
        dry.of("outbox", Action::Deleted),
        2,
        "the dry run said so: {dry:?}"
    );

    for needle in [&old.name, &old.email, &old_pin] {
        let found = everywhere(pool, needle).await;
        assert!(found.is_empty(), "{needle} is still in {found:?}");
    }
    for needle in [&fresh.name, &fresh.email] {
        let found = everywhere(pool, needle).await;
        assert!(
            found.iter().any(|column| column == "bookings.patron_email"
                || column == "bookings.patron_name"),
            "the fresh booking keeps {needle}: {found:?}"
        );
    }
    let sealed = "SELECT count(*) FROM booking_pins
                  WHERE booking_id = $1 AND (pin_sealed IS NOT NULL OR pin_digest IS NOT NULL)";
    assert_eq!(
        count(pool, sealed, "ret-old").await,
        0,
        "the sealed PIN is gone"
    );
    assert_eq!(
        count(pool, sealed, "ret-fresh").await,
        1,
        "the fresh PIN stays"
    );
    let fresh_after: String = sqlx::query_scalar(fresh_row)
        .bind("ret-fresh")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fresh_after, fresh_before, "the fresh booking is untouched");
    // The old booking is still counted: its row, its emails, its PIN's story.
    let (status, purged_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT status::text, purged_at FROM bookings WHERE booking_id = 'ret-old'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(status, "confirmed");
    assert!(purged_at.is_some());
    assert_eq!(
        (
            count(pool, emails, "ret-old").await,
            count(pool, history, "ret-old").await
        ),
        kept_before
    );

    let again = pass(pool, Mode::Apply).await;
    assert_eq!(again.total(), 0, "a second pass changes nothing: {again:?}");

    // The intake API and the staff view still answer about it, saying it was purged.
    let intake = system.get_booking("ret-old").await;
    assert_eq!(
        intake["patron"],
        json!({"name": PURGED, "email": PURGED}),
        "{intake}"
    );
    assert_eq!(intake["pin"]["pin"], Value::Null, "{intake}");
    assert_eq!(intake["status"], "confirmed");
    let (status, staff) = system
        .admin_api()
        .call(
            system
                .admin_api()
                .request(Method::GET, "/api/v1/bookings/ret-old"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{staff}");
    assert_eq!(staff["patron"]["name"], PURGED, "{staff}");
    assert_eq!(staff["pin"]["pin"], Value::Null, "{staff}");
    assert_eq!(staff["space_id"], "sp-101");
    let fresh_view = system.get_booking("ret-fresh").await;
    assert_eq!(fresh_view["patron"]["email"], fresh.email.as_str());
    assert_eq!(fresh_view["pin"]["pin"], fresh_pin.as_str());
}

#[tokio::test]
async fn a_purged_booking_written_again_is_purged_again_once_due() {
    let system = TestSystem::start().await;
    system.catalogue().await;
    let pool = &system.db.pool;
    let ended = |patron: &Patron| {
        json!({
            "space_id": "sp-102", "starts_at": "2020-01-10T10:00:00Z",
            "ends_at": "2020-01-10T11:00:00Z", "status": "cancelled",
            "patron": {"name": patron.name, "email": patron.email},
        })
    };
    let first = Patron::new();
    let (status, _) = system.put("/v1/bookings/ret-again", &ended(&first)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until_settled(&system).await;
    let counts = pass(pool, Mode::Apply).await;
    assert_eq!(
        counts.of("bookings", Action::Purged),
        1,
        "cancelled ones too: {counts:?}"
    );
    assert!(everywhere(pool, &first.email).await.is_empty());
    // The upstream sends it again with a patron: it is theirs again until the next pass.
    let second = Patron::new();
    let (status, answer) = system.put("/v1/bookings/ret-again", &ended(&second)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["patron"]["email"], second.email.as_str());
    wait_until_settled(&system).await;
    let counts = pass(pool, Mode::Apply).await;
    assert_eq!(counts.of("bookings", Action::Purged), 1, "{counts:?}");
    assert!(everywhere(pool, &second.email).await.is_empty());
}

#[tokio::test]
async fn the_admin_runs_passes_on_its_interval_and_logs_only_counts() {
    let logs = CapturedLogs::install();
    let system = TestSystem::start_with(
        Default::default(),
        &[("retention.interval", "300ms".to_owned())],
    )
    .await;
    system.catalogue().await;
    let patron = Patron::new();
    let body = json!({
        "space_id": "sp-102", "starts_at": "2020-01-10T10:00:00Z",
        "ends_at": "2020-01-10T11:00:00Z", "status": "confirmed",
        "patron": {"name": patron.name, "email": patron.email},
    });
    let (status, _) = system.put("/v1/bookings/ret-periodic", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let purged: bool = sqlx::query_scalar(
            "SELECT purged_at IS NOT NULL FROM bookings WHERE booking_id = 'ret-periodic'",
        )
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
        if purged {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    logs.wait_for_line(&["retention pass", "bookings.purged=1"], WAIT)
        .await;
    let text = logs.text();
    for line in text.lines().filter(|line| line.contains("retention")) {
        assert!(
            !line.contains(&patron.email) && !line.contains(&patron.name),
            "{line}"
        );
        assert!(!line.contains("ret-periodic"), "no booking either: {line}");
    }
}
