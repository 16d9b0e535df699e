//! Running the `lockbridge` binary as an operator would, and reading how it went.

use std::process::{Command, Output};

/// Runs `lockbridge args…` with the repository's `config/` and `env` on top (the URLs of the
/// test's database or broker).
pub fn lockbridge(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockbridge"))
        .args(args)
        .env_remove("LOCKBRIDGE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("lockbridge runs")
}

pub fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Fails with exit code `code`, saying `why` on stderr; prints nothing on stdout.
pub fn refused(output: &Output, code: i32, why: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
    assert!(output.stdout.is_empty());
}
