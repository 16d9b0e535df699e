//! `lockbridge config check`: the configuration read as each service reads it, judged by each
//! service's own checks, secrets never printed.

mod support;

use std::process::Output;

use support::{lockbridge, refused, succeeded};

/// The demo's configuration, with which every service starts.
const DEMO: (&str, &str) = (
    "LOCKBRIDGE_CONFIG",
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/demo.toml"),
);

fn check(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut all = vec!["config", "check", "--json"];
    all.extend_from_slice(args);
    lockbridge(&all, env)
}

/// Each service's verdict: `None` when it would start, else the sentence it would stop with.
fn verdicts(output: &Output) -> Vec<(String, Option<String>)> {
    let verdicts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    verdicts
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["service"].as_str().unwrap().to_owned(),
                v["problem"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn problem_of<'a>(verdicts: &'a [(String, Option<String>)], service: &str) -> Option<&'a str> {
    verdicts
        .iter()
        .find(|(name, _)| name == service)
        .unwrap_or_else(|| panic!("{service} is checked: {verdicts:?}"))
        .1
        .as_deref()
}

#[test]
fn the_committed_defaults_name_each_services_missing_credential_and_exit_1() {
    // The defaults alone: no file of the deployment's own, the demo's not loaded.
    let output = lockbridge(&["config", "check", "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("5 of 5 service(s) would not start"),
        "{stderr}"
    );
    let verdicts = verdicts(&output);
    assert_eq!(verdicts.len(), 5);
    for (service, setting) in [
        ("booking-intake", "intake.tokens.<source> is not set"),
        ("lock-provisioner", "remotelock.client_secret is not set"),
        ("admin", "admin.api_token is not set"),
        ("libcal-connector", "libcal.client_secret is not set"),
        ("notifier", "pins.encryption_key is not set"),
    ] {
        let problem = problem_of(&verdicts, service).unwrap_or("ok");
        assert!(problem.contains(setting), "{service}: {problem}");
    }
}

#[test]
fn the_demo_configuration_starts_every_service() {
    let output = check(&[DEMO], &[]);
    succeeded(&output);
    assert!(
        verdicts(&output)
            .iter()
            .all(|(_, problem)| problem.is_none())
    );
    // As a table, for people.
    let table = succeeded(&lockbridge(&["config", "check"], &[DEMO]));
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("lock-provisioner  ok"), "{table}");
}

#[test]
fn a_wrong_value_is_named_by_the_services_that_read_it_and_no_other() {
    let output = check(
        &[
            DEMO,
            ("LOCKBRIDGE__ALERTS__RECIPIENTS", "desk at library"),
            ("LOCKBRIDGE__REMOTELOCK__TOKEN_ENCRYPTION_KEY", "too-short"),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let verdicts = verdicts(&output);
    let notifier = problem_of(&verdicts, "notifier").unwrap();
    assert!(notifier.contains("alerts.recipients"), "{notifier}");
    for service in ["lock-provisioner", "admin"] {
        let problem = problem_of(&verdicts, service).unwrap();
        assert!(
            problem.contains("remotelock.token_encryption_key must be 32 random bytes"),
            "{service}: {problem}"
        );
        assert!(
            !problem.contains("too-short"),
            "never quotes a key: {problem}"
        );
    }
    assert_eq!(problem_of(&verdicts, "booking-intake"), None);
    assert_eq!(problem_of(&verdicts, "libcal-connector"), None);
}

#[test]
fn a_setting_that_does_not_parse_stops_only_the_services_whose_section_it_is() {
    let output = check(&[DEMO, ("LOCKBRIDGE__NOTIFIER__CONCURRENCY", "lots")], &[]);
    let verdicts = verdicts(&output);
    let notifier = problem_of(&verdicts, "notifier").unwrap();
    assert!(
        notifier.starts_with("the configuration is invalid") && notifier.contains("concurrency"),
        "{notifier}"
    );
    assert_eq!(problem_of(&verdicts, "booking-intake"), None);
    assert_eq!(problem_of(&verdicts, "lock-provisioner"), None);
}

#[test]
fn connection_urls_are_checked_without_connecting() {
    let output = check(
        &[
            DEMO,
            (
                "LOCKBRIDGE__DATABASE__URL",
                "mysql://root:hunter2@db/lockbridge",
            ),
            ("LOCKBRIDGE__AMQP__URL", "not a url"),
        ],
        &["--service", "booking-intake"],
    );
    let intake = verdicts(&output);
    assert_eq!(intake.len(), 1, "one service asked: {intake:?}");
    let problem = problem_of(&intake, "booking-intake").unwrap();
    assert_eq!(problem, "database.url must be a postgres URL");

    let output = check(
        &[DEMO, ("LOCKBRIDGE__AMQP__URL", "not a url")],
        &["--service", "libcal-connector"],
    );
    // The connector never reads amqp.url.
    succeeded(&output);
    let output = check(
        &[DEMO, ("LOCKBRIDGE__AMQP__URL", "not a url")],
        &["--service", "notifier"],
    );
    let problem = problem_of(&verdicts(&output), "notifier").map(str::to_owned);
    assert!(
        problem
            .as_deref()
            .unwrap_or("")
            .starts_with("amqp.url is not a URL"),
        "{problem:?}"
    );
}

#[test]
fn show_prints_every_setting_with_secrets_masked() {
    let output = lockbridge(
        &["config", "check", "--show"],
        &[
            DEMO,
            (
                "LOCKBRIDGE__ADMIN__API_TOKEN",
                "admin-token-that-must-not-show",
            ),
            (
                "LOCKBRIDGE__DATABASE__URL",
                "postgres://lockbridge:db-password-that-must-not-show@db/lockbridge",
            ),
        ],
    );
    let shown = succeeded(&output);
    assert!(!shown.contains("must-not-show"), "{shown}");
    let line = |setting: &str| -> String {
        shown
            .lines()
            .find(|line| line.starts_with(&format!("{setting} ")))
            .unwrap_or_else(|| panic!("{setting} is shown:\n{shown}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("admin.api_token"), "****");
    assert_eq!(line("intake.tokens.demo"), "****");
    assert_eq!(
        line("database.url"),
        "postgres://lockbridge:****@db/lockbridge"
    );
    assert_eq!(line("provisioner.lead_time"), "15m");
    assert_eq!(line("smtp.url"), "smtp://127.0.0.1:1025");
}

#[test]
fn an_unknown_service_is_refused_by_name() {
    let output = lockbridge(&["config", "check", "--service", "printer"], &[DEMO]);
    refused(&output, 2, "invalid value 'printer'");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("booking-intake"),
        "names the choices: {stderr}"
    );
}
