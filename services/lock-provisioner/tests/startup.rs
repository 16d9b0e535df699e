//! The real binary, started with a setting of its own that is wrong: it must exit with one
//! sentence naming the setting, before it connects anything.

use std::process::Command;

#[test]
fn a_malformed_setting_of_its_own_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_lock-provisioner"))
        .env("LOCKBRIDGE__PROVISIONER__CONCURRENCY", "lots")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr}");
    assert!(
        lines[0].starts_with("lock-provisioner cannot start: "),
        "{stderr}"
    );
    assert!(lines[0].contains("provisioner.concurrency"), "{stderr}");
}
