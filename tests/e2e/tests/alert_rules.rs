//! The alerting rules in `ops/prometheus/` (issue 9) cannot rot: promtool must accept them and
//! pass their unit tests, and every lockbridge metric they name must be one the services
//! record. `scripts/test` installs promtool (Debian's `prometheus`) when it is missing.

use std::{collections::BTreeSet, path::Path, process::Command};

fn rules_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ops/prometheus"))
}

fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("promtool runs (scripts/test installs it: apt-get install prometheus)");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_and_the_config_and_the_rules_unit_tests_pass() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts.test.yml"]);
    // The compose system's Prometheus, which loads them.
    promtool(&["check", "config", "prometheus.yml"]);
}

/// The `lockbridge_…` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("lockbridge_"))
        .map(str::to_owned)
        .collect()
}

/// Every Rust source under `dir`, concatenated.
fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            text.push_str(&sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path).expect("a source file"));
        }
    }
    text
}

#[test]
fn every_metric_an_alert_names_is_recorded_by_a_service() {
    let rules = std::fs::read_to_string(rules_dir().join("alerts.yml")).unwrap();
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let code = sources(&root.join("crates")) + &sources(&root.join("services"));
    // A metric is recorded under its name as a string literal.
    let missing: Vec<_> = metric_names(&rules)
        .into_iter()
        .filter(|name| !code.contains(&format!("\"{name}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "alerts name metrics no service records: {missing:?}"
    );
}
