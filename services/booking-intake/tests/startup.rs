//! The real binary, started with something missing or wrong: it must exit with one sentence
//! naming the problem, not a panic trace.

use std::process::Command;

fn start_with(env: &[(&str, &str)]) -> (Option<i32>, String) {
    // The credentials booking-intake needs, so what the test breaks is what it reports.
    run(
        &[
            ("LOCKBRIDGE__INTAKE__TOKENS__TEST", "test-intake-token"),
            (
                "LOCKBRIDGE__PINS__ENCRYPTION_KEY",
                "bG9ja2JyaWRnZS1zdGFydHVwLXRlc3Qta2V5LTMyYnk=",
            ),
        ],
        env,
    )
}

/// The binary's exit code and stderr, with `settings` and then `env` set, on a free port.
fn run(settings: &[(&str, &str)], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_booking-intake"))
        .envs(settings.iter().chain(env).copied())
        .env("LOCKBRIDGE__INTAKE__LISTEN", "127.0.0.1:0")
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_one_sentence(stderr: &str, mentions: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr}");
    assert!(
        lines[0].starts_with("booking-intake cannot start: "),
        "{stderr}"
    );
    assert!(lines[0].contains(mentions), "names {mentions}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unreachable_database_is_named() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let (code, stderr) = start_with(&[(
        "LOCKBRIDGE__DATABASE__URL",
        "postgres://postgres@127.0.0.1:1/lockbridge",
    )]);
    assert_eq!(code, Some(1));
    assert_one_sentence(&stderr, "database.url");
}

#[test]
fn a_malformed_setting_is_named() {
    let (code, stderr) = start_with(&[("LOCKBRIDGE__INTAKE__MAX_BODY_BYTES", "lots")]);
    assert_eq!(code, Some(1));
    assert_one_sentence(&stderr, "intake.max_body_bytes");
}

#[test]
fn another_services_setting_is_not_read() {
    // Past the configuration, booking-intake stops at the database instead (port 1: refused).
    let (code, stderr) = start_with(&[
        ("LOCKBRIDGE__PROVISIONER__CONCURRENCY", "lots"),
        (
            "LOCKBRIDGE__DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/lockbridge",
        ),
    ]);
    assert_eq!(code, Some(1));
    assert_one_sentence(&stderr, "database.url");
}

#[test]
fn a_malformed_listen_address_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_booking-intake"))
        .env("LOCKBRIDGE__INTAKE__LISTEN", "everywhere")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    assert_one_sentence(&String::from_utf8_lossy(&output.stderr), "intake.listen");
}

#[test]
fn an_empty_source_token_is_named() {
    let (code, stderr) = start_with(&[("LOCKBRIDGE__INTAKE__TOKENS__LIBCAL", "")]);
    assert_eq!(code, Some(1));
    assert_one_sentence(&stderr, "intake.tokens.libcal");
}

#[test]
fn no_source_token_is_named_with_how_to_make_one() {
    let (code, stderr) = run(&[], &[]);
    assert_eq!(code, Some(1));
    assert_one_sentence(&stderr, "intake.tokens.<source> is not set");
    assert!(stderr.contains("openssl rand -base64 32"), "{stderr}");
}
