//! `lockbridge reconcile [--dry-run] [--json]` against a running lockbridge (real PostgreSQL,
//! RabbitMQ, the RemoteLock simulator): a dry run finds a guest deactivated by hand and
//! changes nothing, a run queues its repair and the provisioner makes the door work again; a
//! missing key is refused by name.

mod support;

use std::time::Duration;

use lockbridge_e2e::{
    services::{PIN_ENCRYPTION_KEY, TOKEN_ENCRYPTION_KEY},
    system::TestSystem,
};
use remotelock_sim::{PersonStatus, SimConfig};
use support::{refused, succeeded};

fn reconcile(system: &TestSystem, args: &[&str], without: Option<&str>) -> std::process::Output {
    let base = system.sim.base_url().to_string();
    let secret = SimConfig::default().client_secret;
    let env = [
        ("LOCKBRIDGE__DATABASE__URL", system.db.url.as_str()),
        ("LOCKBRIDGE__REMOTELOCK__API_URL", base.as_str()),
        ("LOCKBRIDGE__REMOTELOCK__OAUTH_URL", base.as_str()),
        ("LOCKBRIDGE__REMOTELOCK__CLIENT_SECRET", secret.as_str()),
        (
            "LOCKBRIDGE__REMOTELOCK__TOKEN_ENCRYPTION_KEY",
            TOKEN_ENCRYPTION_KEY,
        ),
        ("LOCKBRIDGE__PINS__ENCRYPTION_KEY", PIN_ENCRYPTION_KEY),
    ];
    let env: Vec<(&str, &str)> = env
        .into_iter()
        .filter(|(name, _)| Some(*name) != without)
        .collect();
    support::lockbridge(args, &env)
}

// The simulator answers the command from this process: the runtime must not be the thread
// that waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_finds_and_a_run_repairs_a_guest_deactivated_by_hand() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    system.book_confirmed("cli-1").await;
    system
        .wait_for_pin("cli-1", "issued", Duration::from_secs(60))
        .await;
    let guest = system.guests_for("cli-1").remove(0);
    let deactivate = reqwest::Client::new()
        .put(format!(
            "{}access_persons/{}/deactivate",
            system.sim.base_url(),
            guest.id
        ))
        .bearer_auth(system.sim.issue_tokens().access_token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(deactivate.status().is_success());

    let dry = succeeded(&reconcile(
        &system,
        &["reconcile", "--dry-run", "--json"],
        None,
    ));
    let dry: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(dry["checked"], 1, "{dry}");
    assert_eq!(dry["findings"][0]["booking_id"], "cli-1");
    assert_eq!(dry["findings"][0]["kinds"][0], "guest_deactivated");
    assert_eq!(dry["findings"][0]["outcome"], "found");
    assert!(
        system.sim.live_guests_on_lock(&lock).is_empty(),
        "a dry run changes nothing"
    );

    let run = succeeded(&reconcile(&system, &["reconcile"], None));
    assert!(
        run.contains("cli-1") && run.contains("guest_deactivated") && run.contains("repair_queued"),
        "{run}"
    );
    assert!(run.contains("1 guests checked, 1 drifted"), "{run}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while system.sim.live_guests_on_lock(&lock).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never repaired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = system.sim.live_guests_on_lock(&lock).remove(0);
    assert_eq!(
        (live.status, &live.pin),
        (PersonStatus::Upcoming, &guest.pin)
    );

    // Nothing left to find.
    let again = succeeded(&reconcile(&system, &["reconcile", "--json"], None));
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["findings"], serde_json::json!([]), "{again}");
}

#[tokio::test]
async fn without_the_pin_key_it_is_refused_by_name() {
    let system = TestSystem::start().await;
    let output = reconcile(
        &system,
        &["reconcile"],
        Some("LOCKBRIDGE__PINS__ENCRYPTION_KEY"),
    );
    refused(&output, 1, "pins.encryption_key");
}
