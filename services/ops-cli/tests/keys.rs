//! `lockbridge keys rotate` against a real PostgreSQL: every sealed value comes under the new
//! key (PINs with their digests, outbox events and email jobs, the RemoteLock tokens), PINs
//! stored in clear get sealed, a dry run changes nothing, and a value no key opens is reported
//! and fails the command.

mod support;

use lockbridge_domain::Pin;
use lockbridge_e2e::TestDatabase;
use lockbridge_remotelock::TOKEN_KEY;
use lockbridge_sealing::{
    Sealer,
    pins::{PinKeySettings, PinSealer},
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use support::succeeded;

const OLD: &str = "bG9ja2JyaWRnZS1jbGkta2V5cy10ZXN0LW9sZC1rZXk=";
const NEW: &str = "bG9ja2JyaWRnZS1jbGkta2V5cy10ZXN0LW5ldy1rZXk=";
const STRANGER: &str = "bG9ja2JyaWRnZS1jbGkta2V5cy1zdHJhbmdlci1rZXk=";

fn pins(current: &str, previous: Option<&str>) -> PinSealer {
    PinKeySettings {
        encryption_key: SecretString::from(current),
        previous_encryption_key: previous.map(SecretString::from),
    }
    .sealer()
    .unwrap()
}

fn tokens(current: &str) -> Sealer {
    Sealer::new(TOKEN_KEY, &SecretString::from(current), None).unwrap()
}

/// `lockbridge keys rotate` with the new keys current and the old ones previous.
fn rotate(db: &TestDatabase, extra: &[&str]) -> std::process::Output {
    let args = [&["keys", "rotate", "--json"], extra].concat();
    support::lockbridge(
        &args,
        &[
            ("LOCKBRIDGE__DATABASE__URL", &db.url),
            ("LOCKBRIDGE__PINS__ENCRYPTION_KEY", NEW),
            ("LOCKBRIDGE__PINS__PREVIOUS_ENCRYPTION_KEY", OLD),
            ("LOCKBRIDGE__REMOTELOCK__TOKEN_ENCRYPTION_KEY", NEW),
            ("LOCKBRIDGE__REMOTELOCK__PREVIOUS_TOKEN_ENCRYPTION_KEY", OLD),
        ],
    )
}

fn resealed(output: &str) -> Vec<(String, u64, u64)> {
    let tables: Value = serde_json::from_str(output).unwrap();
    tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                t["resealed"].as_u64().unwrap(),
                t["unopenable"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn pin_event(pin: &str) -> Value {
    json!({"event_type": "pin.issued", "data": {"booking_id": "b-1", "pin": pin}})
}

/// A database as a deployment under the old keys has it.
async fn sealed_under_old_keys(db: &TestDatabase) {
    let old = pins(OLD, None);
    let sealed = old.seal(&Pin::parse("482193").unwrap());
    let mut event = pin_event("572981");
    old.seal_field(&mut event, "/data/pin");
    let mut job = pin_event("604918");
    old.seal_field(&mut job, "/data/pin");
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, pin_sealed, pin_digest)
         VALUES ('b-1', gen_random_uuid(), 'issued', $1, $2),
                ('b-legacy', gen_random_uuid(), 'issued', NULL, NULL);
         ",
    )
    .bind(&sealed.sealed)
    .bind(&sealed.digest)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE booking_pins SET pin = '739164' WHERE booking_id = 'b-legacy'")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO outbox (producer, event_id, exchange, routing_key, payload)
         VALUES ('lock-provisioner', gen_random_uuid(), 'lockbridge.pins', 'pin.issued', $1)",
    )
    .bind(&event)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO jobs (queue, job_key, payload, priority_at) VALUES ('email', 'b-1:1', $1, now())",
    )
    .bind(&job)
    .execute(&db.pool)
    .await
    .unwrap();
    let token = tokens(OLD);
    sqlx::query(
        "INSERT INTO remotelock_authorization (access_token_enc, refresh_token_enc, access_expires_at)
         VALUES ($1, $2, now() + interval '1 hour')",
    )
    .bind(token.seal(b"access-token"))
    .bind(token.seal(b"refresh-token"))
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn rotate_brings_every_sealed_value_under_the_new_keys() {
    let db = TestDatabase::create().await;
    sealed_under_old_keys(&db).await;

    let dry = succeeded(&rotate(&db, &["--dry-run"]));
    let (table, said) = dry.split_once("dry run:").expect("the dry run says so");
    assert_eq!(said.trim(), "nothing was changed");
    let counted = resealed(table);
    assert_eq!(
        counted,
        vec![
            ("booking_pins".to_owned(), 2, 0),
            ("outbox".to_owned(), 1, 0),
            ("jobs (email)".to_owned(), 1, 0),
            ("remotelock_authorization".to_owned(), 1, 0),
        ]
    );
    let legacy: Option<String> =
        sqlx::query_scalar("SELECT pin FROM booking_pins WHERE booking_id = 'b-legacy'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        legacy.as_deref(),
        Some("739164"),
        "the dry run changed nothing"
    );

    let done = resealed(&succeeded(&rotate(&db, &[])));
    assert_eq!(done, counted);
    // Everything opens under the new keys alone now.
    let new = pins(NEW, None);
    // booking id, the clear column, the sealed PIN, its digest
    type Stored = (String, Option<String>, Vec<u8>, Vec<u8>);
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT booking_id, pin, pin_sealed, pin_digest FROM booking_pins ORDER BY booking_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for ((booking, plain, sealed, digest), expected) in stored.iter().zip(["482193", "739164"]) {
        assert_eq!(plain, &None, "{booking}");
        let pin = new.open(sealed).unwrap();
        assert_eq!(pin.expose(), expected);
        assert_eq!(
            new.digests(&pin),
            vec![digest.clone()],
            "{booking}'s digest"
        );
    }
    for (table, expected) in [("outbox", "572981"), ("jobs", "604918")] {
        let mut payload: Value = sqlx::query_scalar(&format!("SELECT payload FROM {table}"))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        new.open_field(&mut payload, "/data/pin").unwrap();
        assert_eq!(payload["data"]["pin"], expected, "{table}");
    }
    let (access, refresh): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT access_token_enc, refresh_token_enc FROM remotelock_authorization")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let token = tokens(NEW);
    assert_eq!(
        token.open_secret(&access).unwrap().expose_secret(),
        "access-token"
    );
    assert_eq!(
        token.open_secret(&refresh).unwrap().expose_secret(),
        "refresh-token"
    );

    // A second run finds nothing left to do.
    let again = resealed(&succeeded(&rotate(&db, &[])));
    assert!(
        again.iter().all(|(_, resealed, _)| *resealed == 0),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_value_no_key_opens_is_reported_and_fails_the_rotation() {
    let db = TestDatabase::create().await;
    let stranger = pins(STRANGER, None).seal(&Pin::parse("482193").unwrap());
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, pin_sealed, pin_digest)
         VALUES ('b-lost', gen_random_uuid(), 'issued', $1, $2)",
    )
    .bind(&stranger.sealed)
    .bind(&stranger.digest)
    .execute(&db.pool)
    .await
    .unwrap();
    let output = rotate(&db, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 stored values open under none of the configured keys"),
        "{stderr}"
    );
    let table = resealed(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(table[0], ("booking_pins".to_owned(), 0, 1));
    let kept: Vec<u8> = sqlx::query_scalar("SELECT pin_sealed FROM booking_pins")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(kept, stranger.sealed, "left as it was");
}

#[tokio::test]
async fn rotate_refuses_a_malformed_key_naming_the_setting() {
    let db = TestDatabase::create().await;
    let output = support::lockbridge(
        &["keys", "rotate"],
        &[
            ("LOCKBRIDGE__DATABASE__URL", &db.url),
            ("LOCKBRIDGE__PINS__ENCRYPTION_KEY", NEW),
            ("LOCKBRIDGE__PINS__PREVIOUS_ENCRYPTION_KEY", "short"),
            ("LOCKBRIDGE__REMOTELOCK__TOKEN_ENCRYPTION_KEY", NEW),
        ],
    );
    support::refused(
        &output,
        1,
        "pins.previous_encryption_key must be 32 random bytes",
    );
}
