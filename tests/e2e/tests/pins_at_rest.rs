//! Door PINs at rest (issue 9): sealed in every table that holds one, yet the patron's email,
//! the intake API and staff still get the PIN; plaintext PINs of an earlier version are sealed
//! as the provisioner starts; a key that cannot open them stops a service in one sentence;
//! a new key with the old one as previous keeps every PIN readable.

use std::time::Duration;

use lockbridge_e2e::{
    TestDatabase,
    services::{self, PIN_ENCRYPTION_KEY},
    system::TestSystem,
};
use lockbridge_runtime::service::Service;
use lockbridge_sealing::pins::{PinKeySettings, PinSealer};
use reqwest::Method;
use secrecy::SecretString;

const WAIT: Duration = Duration::from_secs(30);
/// The key a deployment rotates to.
const NEW_KEY: &str = "bG9ja2JyaWRnZS1lMmUtbmV3LXBpbnMta2V5LTMyYnk=";

fn sealer(key: &str) -> PinSealer {
    PinKeySettings {
        encryption_key: SecretString::from(key),
        previous_encryption_key: None,
    }
    .sealer()
    .expect("a valid key")
}

/// Every place in the database where `pin` appears in clear: as a text value or inside one,
/// quoted in JSON, or as raw bytes. Digits inside longer runs (an id, a hex string) are not it.
async fn where_stored_in_clear(db: &TestDatabase, pin: &str) -> Vec<String> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = 'public'
           AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut found = Vec::new();
    for (table, column, kind) in columns {
        let test = match kind.as_str() {
            "bytea" => format!("position(convert_to($1, 'UTF8') in {column:?}) > 0"),
            _ => format!("{column:?}::text ~ ('(^|[^0-9a-zA-Z])' || $1 || '($|[^0-9a-zA-Z])')"),
        };
        let count: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table:?} WHERE {test}"))
                .bind(pin)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if count > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

async fn stored_pin(db: &TestDatabase, booking_id: &str) -> Vec<u8> {
    sqlx::query_scalar("SELECT pin_sealed FROM booking_pins WHERE booking_id = $1")
        .bind(booking_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pin_is_stored_only_sealed_yet_reaches_the_patron_the_api_and_staff() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = system.book_confirmed("rest-1").await;
    let issued = system.wait_for_pin("rest-1", "issued", WAIT).await;
    let pin = issued["pin"]["pin"]
        .as_str()
        .expect("the API shows the PIN");
    let emails = system.mailbox.wait_for(&patron, 1, WAIT).await;
    assert!(emails[0].text.contains(pin), "the email carries the PIN");
    system.wait_for_emails_recorded("rest-1", 1, WAIT).await;
    system.wait_for_outbox_drained(WAIT).await;
    let api = system.admin_api();
    let (_, staff) = api
        .call(api.request(Method::GET, "/api/v1/bookings/rest-1"))
        .await;
    assert_eq!(staff["pin"]["pin"], pin, "staff see it: {staff}");

    // Outbox rows, the email job, the booking's record: none holds it in clear.
    assert_eq!(
        where_stored_in_clear(&system.db, pin).await,
        Vec::<String>::new()
    );
    let sealed = stored_pin(&system.db, "rest-1").await;
    assert_eq!(
        sealer(PIN_ENCRYPTION_KEY).open(&sealed).unwrap().expose(),
        pin
    );
    let sealed_in_job: String =
        sqlx::query_scalar("SELECT payload->'data'->>'pin' FROM jobs WHERE queue = 'email'")
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    assert!(sealed_in_job.starts_with("sealed:"), "{sealed_in_job}");
}

#[tokio::test]
async fn plaintext_pins_of_an_earlier_version_are_sealed_as_the_provisioner_starts() {
    let mut system = TestSystem::start().await;
    system.ready_with_link().await;
    system.book_confirmed("rest-2").await;
    let issued = system.wait_for_pin("rest-2", "issued", WAIT).await;
    let pin = issued["pin"]["pin"].as_str().unwrap().to_owned();
    // As a database upgraded from before sealing has it: the PIN in the old column only.
    sqlx::query(
        "UPDATE booking_pins SET pin = $1, pin_sealed = NULL, pin_digest = NULL
         WHERE booking_id = 'rest-2'",
    )
    .bind(&pin)
    .execute(&system.db.pool)
    .await
    .unwrap();

    system.restart_provisioner().await;
    let (plain, sealed): (Option<String>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT pin, pin_sealed FROM booking_pins WHERE booking_id = 'rest-2'")
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    assert_eq!(plain, None, "the clear column is emptied");
    let sealed = sealed.expect("sealed at start");
    assert_eq!(
        sealer(PIN_ENCRYPTION_KEY).open(&sealed).unwrap().expose(),
        pin
    );
    assert_eq!(
        system.get_booking("rest-2").await["pin"]["pin"],
        pin.as_str()
    );
}

/// Why `S` refuses to start on `db` with another PIN key.
async fn refusal_with_another_key<S: Service>(system: &TestSystem) -> String {
    let settings = services::settings::<S::Sections>(&[
        ("database.url", system.db.url.clone()),
        ("amqp.url", system.broker.url.clone()),
        ("pins.encryption_key", NEW_KEY.to_owned()),
    ]);
    match S::build(settings).await {
        Ok(_) => panic!("{} started with a key that opens no stored PIN", S::NAME),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_key_that_cannot_open_the_stored_pins_stops_each_service_in_one_sentence() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    system.book_confirmed("rest-3").await;
    system.wait_for_pin("rest-3", "issued", WAIT).await;
    for refusal in [
        refusal_with_another_key::<booking_intake::Application>(&system).await,
        refusal_with_another_key::<admin::Application>(&system).await,
        refusal_with_another_key::<lock_provisioner::Application>(&system).await,
        refusal_with_another_key::<notifier::Application>(&system).await,
    ] {
        assert!(refusal.contains("pins.encryption_key"), "{refusal}");
        assert!(
            refusal.contains("pins.previous_encryption_key"),
            "{refusal}"
        );
        assert!(!refusal.contains(NEW_KEY) && !refusal.contains(PIN_ENCRYPTION_KEY));
    }
}

#[tokio::test]
async fn with_a_new_key_and_the_old_as_previous_every_pin_still_works() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    system.book_confirmed("rest-4").await;
    let old = system.wait_for_pin("rest-4", "issued", WAIT).await;

    let system = system
        .restarted_with(&[
            ("pins.encryption_key", NEW_KEY.to_owned()),
            (
                "pins.previous_encryption_key",
                PIN_ENCRYPTION_KEY.to_owned(),
            ),
        ])
        .await;
    assert_eq!(
        system.get_booking("rest-4").await["pin"]["pin"],
        old["pin"]["pin"]
    );
    // New PINs are sealed under the new key alone.
    let patron = system.book_confirmed("rest-5").await;
    let new = system.wait_for_pin("rest-5", "issued", WAIT).await;
    let sealed = stored_pin(&system.db, "rest-5").await;
    assert_eq!(
        sealer(NEW_KEY).open(&sealed).unwrap().expose(),
        new["pin"]["pin"].as_str().unwrap()
    );
    let emails = system.mailbox.wait_for(&patron, 1, WAIT).await;
    assert!(emails[0].text.contains(new["pin"]["pin"].as_str().unwrap()));
}
