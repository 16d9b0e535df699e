//! What is really on the door (issue 10), against the simulator: a PIN the lock confirms is
//! `synced`; a sync failure other than a conflict sends the PIN again and tells staff; a PIN
//! not on its lock as the booking nears raises an alert that escalates; webhooks with a bad
//! secret are refused, and a webhook and the poll delivering one event apply it once; a door
//! opened with a booking's PIN is that booking's activity.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use lockbridge_e2e::{
    scrape::Scrape,
    system::{TestSystem, booking, pin_state_is, unique_patron},
};
use remotelock_sim::{AttemptOutcome, SimConfig, TlsRoute};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const FAST_POLL: (&str, &str) = ("sync.poll_interval", "300ms");
const SECRET: &str = "webhook-secret-for-the-test";

fn settings(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    [FAST_POLL]
        .iter()
        .chain(extra)
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect()
}

/// A confirmed booking of sp-101 starting `from_now` and lasting an hour.
async fn book_at(system: &TestSystem, booking_id: &str, from_now: chrono::Duration) -> String {
    let patron = unique_patron();
    let starts = Utc::now() + from_now;
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let body = booking(
        "confirmed",
        &at(starts),
        &at(starts + chrono::Duration::hours(1)),
        &patron,
    );
    let (status, answer) = system
        .put(&format!("/v1/bookings/{booking_id}"), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    patron
}

async fn staff_view(system: &TestSystem, booking_id: &str) -> Value {
    let api = system.admin_api();
    let (status, view) = api
        .call(api.request(Method::GET, &format!("/api/v1/bookings/{booking_id}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    view
}

async fn open_failures(system: &TestSystem, kind: &str) -> Vec<Value> {
    let api = system.admin_api();
    let (_, body) = api.call(api.request(Method::GET, "/api/v1/failures")).await;
    body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .cloned()
        .collect()
}

/// Polls `check` until it answers true.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_pin_the_lock_confirms_is_synced_and_staff_see_when() {
    let sim = SimConfig {
        sync_delay: Duration::from_secs(2),
        ..SimConfig::default()
    };
    let system = TestSystem::start_with(sim, &settings(&[])).await;
    system.ready_with_link().await;
    system.book_confirmed("sync-ok").await;
    let issued = system.wait_for_pin("sync-ok", "issued", WAIT).await;
    assert_eq!(
        issued["pin"]["state"], "issued",
        "not on the lock yet: {issued}"
    );

    let synced = system.wait_for_pin("sync-ok", "synced", WAIT).await;
    assert_eq!(synced["pin"]["pin"], issued["pin"]["pin"]);
    let provisioner = system.provisioner.as_ref().expect("running");
    let metrics = Scrape::of(&system.http, &provisioner.url("/metrics")).await;
    assert_eq!(
        metrics.value("lockbridge_pin_syncs_total", &[("outcome", "synced")]),
        Some(1.0)
    );
    assert!(
        metrics
            .value(
                "lockbridge_remotelock_events_total",
                &[("via", "poll"), ("new", "yes")]
            )
            .is_some_and(|n| n >= 1.0)
    );
    let view = staff_view(&system, "sync-ok").await;
    assert_eq!(view["pin"]["state"], "synced");
    let activity = view["activity"].as_array().unwrap();
    assert!(
        activity
            .iter()
            .any(|a| a["kind"] == "access_person_synced" && a["status"] == "succeeded"),
        "{activity:?}"
    );
    let history = view["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["reason"]
            .as_str()
            .unwrap()
            .contains("confirmed it holds the PIN")),
        "{history:?}"
    );
}

#[tokio::test]
async fn a_sync_failure_other_than_a_conflict_sends_the_pin_again_and_tells_staff() {
    let system = TestSystem::start_with(SimConfig::default(), &settings(&[])).await;
    let lock = system.ready_with_link().await;
    let patron = system.book_confirmed("sync-timeout").await;
    let shown = system.wait_for_pin("sync-timeout", "synced", WAIT).await;
    let pin = shown["pin"]["pin"].clone();
    let guest = system.guests_for("sync-timeout")[0].clone();

    // Long after the grant, the lock reports it could not take the PIN.
    system.sim.report_sync_failure(&guest.id, &lock, "timeout");
    until("staff are told the PIN is not on the lock", || async {
        !open_failures(&system, "pin_not_synced").await.is_empty()
            || staff_view(&system, "sync-timeout").await["history"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["reason"].as_str().unwrap().contains("sent to lock"))
    })
    .await;
    let alerts = system.mailbox.wait_for(&system.staff, 1, WAIT).await;
    assert!(
        alerts[0]
            .subject
            .contains("PIN not yet on the lock for booking sync-timeout"),
        "{}",
        alerts[0].subject
    );
    assert!(
        !alerts[0].text.contains(pin.as_str().unwrap()),
        "never the PIN"
    );

    // The PIN went to the lock again (a new grant), which took it this time.
    until("the resent PIN is confirmed", || async {
        let view = staff_view(&system, "sync-timeout").await;
        let resent = view["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"].as_str().unwrap().contains("sent to lock"));
        resent && view["pin"]["state"] == "synced"
    })
    .await;
    assert!(
        open_failures(&system, "pin_not_synced").await.is_empty(),
        "resolved"
    );
    let now = system.get_booking("sync-timeout").await;
    assert_eq!(now["pin"]["pin"], pin, "the same PIN");
    assert_eq!(system.mailbox.to(&patron).await.len(), 1, "no second email");
    let live = system.sim.live_guests_on_lock(&lock);
    assert_eq!(live.len(), 1, "{live:?}");
}

#[tokio::test]
async fn a_pin_not_on_its_lock_as_the_booking_nears_alerts_staff_then_escalates() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &settings(&[
            ("provisioner.lead_time", "0s"),
            ("sync.alert_before", "2h"),
            ("sync.escalate_before", "1h"),
        ]),
    )
    .await;
    let lock = system.ready_with_link().await;
    // Offline: the grants are accepted, the lock takes nothing until it is back.
    system.sim.set_connected(&lock, false);
    book_at(&system, "near", chrono::Duration::minutes(30)).await;
    book_at(&system, "soon", chrono::Duration::minutes(90)).await;
    book_at(&system, "later", chrono::Duration::hours(5)).await;
    for id in ["near", "soon", "later"] {
        system.wait_for_pin(id, "issued", WAIT).await;
    }
    until("both alerts are out", || async {
        open_failures(&system, "pin_not_synced").await.len() == 2
    })
    .await;
    let failures = open_failures(&system, "pin_not_synced").await;
    let ids: Vec<&str> = failures
        .iter()
        .map(|f| f["booking_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"near") && ids.contains(&"soon"), "{ids:?}");
    let steps: Vec<(String, i16)> =
        sqlx::query_as("SELECT booking_id, sync_alerts_sent FROM booking_pins ORDER BY booking_id")
            .fetch_all(&system.db.pool)
            .await
            .unwrap();
    assert_eq!(
        steps,
        vec![("later".into(), 0), ("near".into(), 2), ("soon".into(), 1)],
        "the one within escalate_before is escalated"
    );
    let alerts = system.mailbox.wait_for(&system.staff, 2, WAIT).await;
    assert!(
        alerts
            .iter()
            .all(|a| a.subject.contains("PIN not yet on the lock"))
    );
    // Alerted once per step: a later look sends nothing more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(system.mailbox.to(&system.staff).await.len(), 2);

    system.sim.set_connected(&lock, true);
    until("the lock took the PINs and the alerts resolved", || async {
        open_failures(&system, "pin_not_synced").await.is_empty()
    })
    .await;
    for id in ["near", "soon", "later"] {
        assert!(pin_state_is(
            &system.get_booking(id).await["pin"]["state"],
            "synced"
        ));
    }
}

#[tokio::test]
async fn a_webhook_without_the_secret_is_refused_and_stores_nothing() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &[("remotelock.webhook_secret", SECRET.into())],
    )
    .await;
    let url = system.admin.url("/remotelock/webhook");
    let event = json!({"data": {"type": "unlocked_event", "id": "e-1",
        "attributes": {"created_at": "2027-01-12T14:00:00Z", "occurred_at": "2027-01-12T14:00:00Z",
                       "status": "succeeded", "publisher_type": "lock", "publisher_id": "lock-1"}}});
    let post = |secret: Option<&str>, content_type: &str, body: String| {
        let mut request = system
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if let Some(secret) = secret {
            request = request.header("x-secret", secret);
        }
        request.send()
    };
    let body = event.to_string();
    for (secret, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("wrong"), StatusCode::UNAUTHORIZED),
        (Some(&SECRET[..SECRET.len() - 1]), StatusCode::UNAUTHORIZED),
    ] {
        let answer = post(secret, "application/json", body.clone())
            .await
            .unwrap();
        assert_eq!(answer.status(), expected);
    }
    let form = post(
        Some(SECRET),
        "application/x-www-form-urlencoded",
        "a=b".into(),
    )
    .await
    .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let malformed = post(Some(SECRET), "application/json", "{\"data\": 1}".into())
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM remotelock_events")
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing refused is stored");

    for _ in 0..2 {
        let answer = post(Some(SECRET), "application/json", body.clone())
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::NO_CONTENT,
            "accepted, and again"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM remotelock_events")
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "one event, however often it came");
    let metrics = Scrape::of(&system.http, &system.admin.url("/metrics")).await;
    for (outcome, count) in [
        ("refused", 3.0),
        ("malformed", 1.0),
        ("stored", 1.0),
        ("duplicate", 1.0),
    ] {
        assert_eq!(
            metrics.value("lockbridge_webhooks_total", &[("outcome", outcome)]),
            Some(count),
            "{outcome}"
        );
    }

    // Without a secret configured the endpoint is off.
    let off = TestSystem::start().await;
    let answer = off
        .http
        .post(off.admin.url("/remotelock/webhook"))
        .header("content-type", "application/json")
        .header("x-secret", "")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}

/// Subscribes lockbridge's admin to every event of the account, as an operator would once
/// (docs/operations.md), over the simulator's model of a TLS-terminating proxy.
async fn subscribe_webhook(system: &TestSystem) {
    let host = "lockbridge.test";
    system
        .sim
        .add_webhook_route(TlsRoute::parse(&format!("{host}={}", system.admin.addr)).unwrap());
    let token = system.sim.issue_tokens().access_token;
    let api = |path: &str, body: Value| {
        system
            .http
            .post(format!("{}{path}", system.sim.base_url()))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let subscriber: Value = api(
        "notification_subscribers",
        json!({"type": "webhook_notification_subscriber", "attributes": {
            "name": "lockbridge", "url": format!("https://{host}/remotelock/webhook"),
            "content_type": "json", "secret": SECRET}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let events: Vec<Value> = [
        "access_person_synced",
        "access_person_sync_failed",
        "unlocked",
    ]
    .iter()
    .map(|e| json!({"event_type": e}))
    .collect();
    let subscription = api(
        "notification_subscriptions",
        json!({"attributes": {"events": events,
            "publisher_type": "account", "publisher_id": system.sim.seed().account_id,
            "subscriber_type": "webhook_notification_subscriber",
            "subscriber_id": subscriber["data"]["id"]}}),
    )
    .await
    .unwrap();
    assert_eq!(subscription.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_webhook_and_the_poll_delivering_one_event_apply_it_once() {
    let sim = SimConfig {
        webhook_deliver_twice: true,
        ..SimConfig::default()
    };
    let system =
        TestSystem::start_with(sim, &settings(&[("remotelock.webhook_secret", SECRET)])).await;
    system.ready_with_link().await;
    subscribe_webhook(&system).await;
    system.book_confirmed("hooked").await;
    system.wait_for_pin("hooked", "synced", WAIT).await;
    // Both ways had the time to bring it: the webhook (twice) and a few polls.
    until("the webhook delivered, twice", || async {
        let answered = |a: &remotelock_sim::WebhookAttempt| {
            matches!(a.outcome, AttemptOutcome::Answered { status: 204 })
        };
        let attempts = system.sim.webhook_attempts();
        attempts.iter().any(|a| a.duplicate && answered(a))
            && attempts.iter().any(|a| !a.duplicate && answered(a))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let synced: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_id, received_via FROM remotelock_events
         WHERE kind = 'access_person_synced' AND booking_id = 'hooked'",
    )
    .fetch_all(&system.db.pool)
    .await
    .unwrap();
    assert_eq!(synced.len(), 1, "{synced:?}");
    let history = staff_view(&system, "hooked").await["history"].clone();
    let confirmations = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["reason"]
                .as_str()
                .unwrap()
                .contains("confirmed it holds the PIN")
        })
        .count();
    assert_eq!(confirmations, 1, "applied once: {history}");
}

#[tokio::test]
async fn the_door_opened_with_a_bookings_pin_is_that_bookings_activity() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &settings(&[("provisioner.lead_time", "15m")]),
    )
    .await;
    let lock = system.ready_with_link().await;
    // Starting in five minutes: within the lead time, the PIN works now.
    book_at(&system, "at-door", chrono::Duration::minutes(5)).await;
    let shown = system.wait_for_pin("at-door", "synced", WAIT).await;
    let pin = shown["pin"]["pin"].as_str().unwrap().to_owned();
    assert!(!system.sim.enter_pin(&lock, "0000").opened, "a wrong PIN");
    assert!(
        system.sim.enter_pin(&lock, &pin).opened,
        "the booking's PIN opens it"
    );
    until("the unlock is the booking's activity", || async {
        staff_view(&system, "at-door").await["activity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "unlocked" && a["lock_id"] == lock.as_str())
    })
    .await;
    let activity = staff_view(&system, "at-door").await["activity"].clone();
    let used = activity
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "access_person_used" && a["status"] == "succeeded")
        .count();
    assert_eq!(used, 1, "{activity}");
    // The wrong PIN was nobody's: recorded for the lock, not for this booking.
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM remotelock_events WHERE kind = 'access_denied' AND booking_id IS NULL",
    )
    .fetch_one(&system.db.pool)
    .await
    .unwrap();
    assert_eq!(denied, 1);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(e)::text FROM remotelock_events e")
            .fetch_all(&system.db.pool)
            .await
            .unwrap();
    assert!(
        stored.iter().all(|row| !row.contains(&pin)),
        "never the PIN"
    );
}

#[tokio::test]
async fn a_lock_offline_or_low_with_bookings_soon_alerts_staff_once_per_condition() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &settings(&[
            ("locks.check_interval", "300ms"),
            ("locks.warn_within", "2d"),
        ]),
    )
    .await;
    let lock = system.ready_with_link().await;
    book_at(&system, "tomorrow", chrono::Duration::hours(20)).await;
    system.wait_for_pin("tomorrow", "issued", WAIT).await;

    system.sim.set_connected(&lock, false);
    system.sim.set_power_level(&lock, 12);
    until("both conditions are open", || async {
        !open_failures(&system, "lock_offline").await.is_empty()
            && !open_failures(&system, "lock_battery_low").await.is_empty()
    })
    .await;
    let offline = &open_failures(&system, "lock_offline").await[0];
    assert_eq!(offline["lock_id"], lock.as_str());
    assert_eq!(offline["booking_id"], Value::Null);
    let reason = offline["reason"].as_str().unwrap();
    assert!(
        reason.contains("Study Room 101") && reason.contains("offline"),
        "{reason}"
    );
    let low = open_failures(&system, "lock_battery_low").await[0]["reason"].clone();
    assert!(low.as_str().unwrap().contains("12%"), "{low}");
    let alerts = system.mailbox.wait_for(&system.staff, 2, WAIT).await;
    assert!(
        alerts
            .iter()
            .all(|a| a.subject.starts_with("Lock needs attention"))
    );
    // Several looks later: still one alert per condition.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(system.mailbox.to(&system.staff).await.len(), 2);

    system.sim.set_connected(&lock, true);
    system.sim.set_power_level(&lock, 100);
    until("both resolved once the lock is well", || async {
        open_failures(&system, "lock_offline").await.is_empty()
            && open_failures(&system, "lock_battery_low").await.is_empty()
    })
    .await;
    let health: (Option<bool>, Option<i32>) =
        sqlx::query_as("SELECT connected, power_level FROM lock_health WHERE lock_id = $1")
            .bind(&lock)
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    assert_eq!(health, (Some(true), Some(100)));
}

#[tokio::test]
async fn a_lock_nobody_needs_soon_is_not_alerted() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &settings(&[
            ("locks.check_interval", "300ms"),
            ("locks.warn_within", "2d"),
        ]),
    )
    .await;
    let lock = system.ready_with_link().await;
    book_at(&system, "next-week", chrono::Duration::days(6)).await;
    system.wait_for_pin("next-week", "issued", WAIT).await;
    system.sim.set_connected(&lock, false);
    until("the lock's state is known", || async {
        sqlx::query_scalar::<_, Option<bool>>(
            "SELECT connected FROM lock_health WHERE lock_id = $1",
        )
        .bind(&lock)
        .fetch_optional(&system.db.pool)
        .await
        .unwrap()
        .flatten()
            == Some(false)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(open_failures(&system, "lock_offline").await.is_empty());
}
