//! `lockbridge webhook register` against a running lockbridge and the RemoteLock simulator:
//! the admin's endpoint is subscribed with the configured secret and then receives the
//! account's events; a second run makes no second subscriber; a URL that is not HTTPS, or a
//! missing secret, is refused and registers nothing.

mod support;

use std::time::Duration;

use lockbridge_e2e::{services::TOKEN_ENCRYPTION_KEY, system::TestSystem};
use remotelock_sim::{AttemptOutcome, SimConfig, TlsRoute};
use support::{refused, succeeded};

const SECRET: &str = "cli-webhook-secret";
const URL: &str = "https://lockbridge.test/remotelock/webhook";

fn register(system: &TestSystem, url: &str, secret: &str) -> std::process::Output {
    let base = system.sim.base_url().to_string();
    let client_secret = SimConfig::default().client_secret;
    support::lockbridge(
        &["webhook", "register", "--url", url, "--json"],
        &[
            ("LOCKBRIDGE__DATABASE__URL", system.db.url.as_str()),
            ("LOCKBRIDGE__REMOTELOCK__API_URL", base.as_str()),
            ("LOCKBRIDGE__REMOTELOCK__OAUTH_URL", base.as_str()),
            (
                "LOCKBRIDGE__REMOTELOCK__CLIENT_SECRET",
                client_secret.as_str(),
            ),
            (
                "LOCKBRIDGE__REMOTELOCK__TOKEN_ENCRYPTION_KEY",
                TOKEN_ENCRYPTION_KEY,
            ),
            ("LOCKBRIDGE__REMOTELOCK__WEBHOOK_SECRET", secret),
        ],
    )
}

async fn subscribers(system: &TestSystem) -> Vec<serde_json::Value> {
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{}notification_subscribers", system.sim.base_url()))
        .bearer_auth(system.sim.issue_tokens().access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["data"].as_array().unwrap().clone()
}

// The simulator answers the command from this process: the runtime must not be the thread
// that waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_is_subscribed_once_and_then_receives_the_accounts_events() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &[("remotelock.webhook_secret", SECRET.to_owned())],
    )
    .await;
    system.ready_with_link().await;
    system.sim.add_webhook_route(
        TlsRoute::parse(&format!("lockbridge.test={}", system.admin.addr)).unwrap(),
    );
    let first: serde_json::Value =
        serde_json::from_str(&succeeded(&register(&system, URL, SECRET))).unwrap();
    assert_eq!(first["registered"], "created");
    let again: serde_json::Value =
        serde_json::from_str(&succeeded(&register(&system, URL, SECRET))).unwrap();
    assert_eq!(again["registered"], "updated");
    let hooks = subscribers(&system).await;
    assert_eq!(hooks.len(), 1, "one subscriber however often: {hooks:?}");
    assert_eq!(hooks[0]["attributes"]["url"], URL);

    // The lock confirms a PIN: RemoteLock calls the admin, which takes it (204).
    system.book_confirmed("hooked-cli").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = system
            .sim
            .webhook_attempts()
            .iter()
            .any(|a| matches!(a.outcome, AttemptOutcome::Answered { status: 204 }));
        if delivered {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no webhook delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let via_webhook: i64 =
        sqlx::query_scalar("SELECT count(*) FROM remotelock_events WHERE received_via = 'webhook'")
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    assert!(via_webhook >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_is_not_https_or_a_missing_secret_registers_nothing() {
    let system = TestSystem::start().await;
    system.authorize().await;
    refused(
        &register(&system, "http://lockbridge.test/remotelock/webhook", SECRET),
        1,
        "--url must be an HTTPS URL",
    );
    refused(&register(&system, "not a url", SECRET), 1, "is not a URL");
    refused(
        &register(&system, URL, ""),
        1,
        "remotelock.webhook_secret is not set",
    );
    assert!(subscribers(&system).await.is_empty());
}
