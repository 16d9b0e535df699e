//! Credentials: none is committed, each service refuses to start without the ones it uses (or
//! with the demo's, outside demo mode), saying which setting in one sentence, and none is ever
//! printed.

use lockbridge_e2e::{
    TestBroker, TestDatabase,
    services::{self, credentials, settings, settings_without},
};
use lockbridge_runtime::{
    configuration::{self, Settings},
    service::Service,
    telemetry::error_chain,
};
use secrecy::ExposeSecret;

/// The credentials each service uses, as the harness names them.
const INTAKE: &[&str] = &["intake.tokens.libcal", "pins.encryption_key"];
const ADMIN: &[&str] = &[
    "admin.api_token",
    "remotelock.client_secret",
    "remotelock.token_encryption_key",
    "pins.encryption_key",
];
const PROVISIONER: &[&str] = &[
    "remotelock.client_secret",
    "remotelock.token_encryption_key",
    "pins.encryption_key",
];
const NOTIFIER: &[&str] = &["pins.encryption_key"];

/// Nothing listens there: a service that connected before checking its credentials fails on
/// the database instead of naming the setting.
const NO_DATABASE: &str = "postgres://postgres@127.0.0.1:1/none";

/// Why `S` refuses to start with `settings` (the sentence after "<service> cannot start:").
async fn refusal<S: Service>(settings: Settings<S::Sections>) -> String {
    match S::build(settings).await {
        Ok(_) => panic!("{} started", S::NAME),
        Err(error) => error.to_string(),
    }
}

/// The demo's value for the harness's credential `setting`.
fn demo_value(setting: &str) -> String {
    let intake = booking_intake::Settings::demo().expect("the demo's settings are valid");
    let admin = admin::Settings::demo().expect("the demo's settings are valid");
    let value = match setting {
        "intake.tokens.libcal" => &intake.own.intake.tokens["demo"],
        "admin.api_token" => &admin.own.admin.api_token,
        "remotelock.client_secret" => &admin.own.remotelock.client_secret,
        "remotelock.token_encryption_key" => &admin.own.remotelock.token_encryption_key,
        "pins.encryption_key" => &admin.own.pins.encryption_key,
        other => panic!("the demo has no {other}"),
    };
    value.expose_secret().to_owned()
}

async fn refuses_without_each<S: Service>(required: &[&str]) {
    let database = ("database.url", NO_DATABASE.to_owned());
    for &setting in required {
        // An absent intake token leaves no source at all.
        let named = match setting.strip_prefix("intake.tokens.") {
            Some(_) => "intake.tokens.<source>",
            None => setting,
        };
        let absent = refusal::<S>(settings_without(
            &[setting],
            std::slice::from_ref(&database),
        ))
        .await;
        assert!(
            absent.starts_with(&format!("{named} is not set; ")),
            "{}: {absent}",
            S::NAME
        );
        let empty = refusal::<S>(settings(&[(setting, " ".to_owned()), database.clone()])).await;
        assert!(
            empty.starts_with(&format!("{setting} is not set; ")),
            "{}: {empty}",
            S::NAME
        );
    }
}

#[tokio::test]
async fn the_refusal_is_one_sentence_saying_how_to_make_the_credential() {
    let error = refusal::<admin::Application>(settings_without(&["admin.api_token"], &[])).await;
    assert_eq!(
        error,
        "admin.api_token is not set; generate one with `openssl rand -base64 32`"
    );
    let error = refusal::<lock_provisioner::Application>(settings_without(
        &["remotelock.client_secret"],
        &[],
    ))
    .await;
    assert_eq!(
        error,
        "remotelock.client_secret is not set; copy it from your RemoteLock OAuth application"
    );
}

async fn refuses_demo_values<S: Service>(required: &[&str]) {
    for &setting in required {
        let error = refusal::<S>(settings(&[
            (setting, demo_value(setting)),
            ("database.url", NO_DATABASE.to_owned()),
        ]))
        .await;
        assert!(
            error.starts_with(&format!(
                "{setting} holds a credential of the demo (config/demo.toml), which only demo \
                 mode accepts; "
            )),
            "{}: {error}",
            S::NAME
        );
    }
}

#[tokio::test]
async fn a_demo_credential_under_another_setting_is_refused_too() {
    let error = refusal::<admin::Application>(settings(&[(
        "admin.api_token",
        demo_value("intake.tokens.libcal"),
    )]))
    .await;
    assert!(
        error.starts_with("admin.api_token holds a credential of the demo"),
        "{error}"
    );
}

/// Builds `S` with `overrides` against a fresh database and virtual host, `missing` left out.
async fn starts<S: Service>(missing: &[&str], overrides: &[(&str, String)]) {
    let db = TestDatabase::create().await;
    let broker = TestBroker::create().await;
    let mut all = vec![
        ("database.url", db.url.clone()),
        ("amqp.url", broker.url.clone()),
    ];
    all.extend_from_slice(overrides);
    if let Err(error) = S::build(settings_without(missing, &all)).await {
        panic!("{} does not start: {error}", S::NAME);
    }
}

async fn accepts_demo_values<S: Service>(required: &[&str]) {
    let mut demo = vec![("demo", "true".to_owned())];
    demo.extend(
        required
            .iter()
            .map(|&setting| (setting, demo_value(setting))),
    );
    starts::<S>(&[], &demo).await;
}

/// `S` refuses to start without each of the credentials it uses, or with one of the demo's
/// outside demo mode, naming the setting; in demo mode it takes the demo's.
async fn checks_its_credentials<S: Service>(required: &[&str]) {
    refuses_without_each::<S>(required).await;
    refuses_demo_values::<S>(required).await;
    accepts_demo_values::<S>(required).await;
}

#[tokio::test]
async fn booking_intake_checks_its_source_tokens() {
    checks_its_credentials::<booking_intake::Application>(INTAKE).await;
}

#[tokio::test]
async fn admin_checks_its_token_and_the_remotelock_credentials() {
    checks_its_credentials::<admin::Application>(ADMIN).await;
}

#[tokio::test]
async fn lock_provisioner_checks_the_remotelock_credentials() {
    checks_its_credentials::<lock_provisioner::Application>(PROVISIONER).await;
}

#[tokio::test]
async fn notifier_checks_the_pin_key() {
    checks_its_credentials::<notifier::Application>(NOTIFIER).await;
}

/// Every harness credential `required` does not name.
fn unused(required: &[&str]) -> Vec<&'static str> {
    credentials()
        .map(|(setting, _)| setting)
        .into_iter()
        .filter(|setting| !required.contains(setting))
        .collect()
}

#[tokio::test]
async fn each_service_starts_without_the_credentials_it_does_not_use() {
    starts::<booking_intake::Application>(&unused(INTAKE), &[]).await;
    starts::<admin::Application>(&unused(ADMIN), &[]).await;
    starts::<lock_provisioner::Application>(&unused(PROVISIONER), &[]).await;
    starts::<notifier::Application>(&unused(NOTIFIER), &[]).await;
}

#[test]
fn the_committed_defaults_hold_no_credential() {
    let defaults = configuration::defaults()
        .build()
        .expect("config/default.toml readable");
    for setting in [
        "admin.api_token",
        "remotelock.client_secret",
        "remotelock.token_encryption_key",
        "pins.encryption_key",
    ] {
        let value = defaults.get_string(setting).unwrap_or_default();
        assert!(value.is_empty(), "config/default.toml sets {setting}");
    }
    let tokens = defaults.get_table("intake.tokens").unwrap_or_default();
    assert!(tokens.is_empty(), "config/default.toml sets intake.tokens");
    // …and each service's settings still parse without them.
    let intake =
        booking_intake::Settings::read(configuration::defaults()).expect("defaults are valid");
    assert!(!intake.demo, "the defaults turn on demo mode");
    admin::Settings::read(configuration::defaults()).expect("defaults are valid");
    lock_provisioner::Settings::read(configuration::defaults()).expect("defaults are valid");
    notifier::Settings::read(configuration::defaults()).expect("defaults are valid");
}

/// Each service parses only its own sections: a mistake in one stops that service alone.
#[tokio::test]
async fn a_bad_setting_stops_only_the_service_that_reads_it() {
    let bad = [("provisioner.concurrency", "lots".to_owned())];
    starts::<booking_intake::Application>(&[], &bad).await;
    starts::<notifier::Application>(&[], &bad).await;
    let refused = lock_provisioner::Settings::read(services::layers(&[], &bad))
        .expect_err("the provisioner reads provisioner.concurrency");
    let sentence = error_chain(&refused);
    assert!(sentence.contains("provisioner.concurrency"), "{sentence}");
}

#[test]
fn debug_output_never_shows_a_credential() {
    let demo = admin::Settings::demo().expect("the demo's settings are valid");
    let intake = booking_intake::Settings::demo().expect("the demo's settings are valid");
    let shown = format!(
        "{:?} {:?} {demo:?} {intake:?}",
        services::settings::<admin::Sections>(&[]),
        services::settings::<booking_intake::Sections>(&[]),
    );
    let harness = credentials().map(|(_, value)| value);
    let demo_values = ADMIN
        .iter()
        .chain(INTAKE)
        .map(|&setting| demo_value(setting));
    for secret in harness.into_iter().chain(demo_values) {
        assert!(!shown.contains(&secret), "Debug shows {secret}");
    }
}
