//! Drift repair (issue 10, item 4) against real PostgreSQL, RabbitMQ and SMTP and the
//! RemoteLock simulator: every way RemoteLock can change behind lockbridge's back is repaired
//! (through the booking's provisioning job) or reported, a guest lockbridge did not make is
//! left alone, a dry run changes nothing, two passes at once repair once, and the pass spends
//! only the background share of the rate budget.

use std::time::Duration;

use lock_provisioner::drift::{DriftError, DriftPass, Mode, Outcome, PassReport};
use lockbridge_e2e::{
    services::{self, PIN_ENCRYPTION_KEY, TOKEN_ENCRYPTION_KEY},
    system::{TestSystem, booking, unique_patron},
};
use lockbridge_remotelock::{
    OAuthClient, RemoteLockClient, RemoteLockError, RemoteLockSettings, TokenManager,
    TransientCause, Urgency,
};
use lockbridge_sealing::pins::PinKeySettings;
use remotelock_sim::{Fault, FaultKind, GuestSnapshot, Method, PersonStatus, PinCheck};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

#[derive(serde::Deserialize)]
struct Sections {
    remotelock: RemoteLockSettings,
    pins: PinKeySettings,
}

/// The pass as a provisioner (or `lockbridge reconcile`) runs it, on the system's database
/// and simulator.
fn drift_pass(system: &TestSystem) -> DriftPass {
    let settings = services::settings::<Sections>(&[
        ("database.url", system.db.url.clone()),
        ("remotelock.api_url", system.sim.base_url().to_string()),
        ("remotelock.oauth_url", system.sim.base_url().to_string()),
        (
            "remotelock.token_encryption_key",
            TOKEN_ENCRYPTION_KEY.to_owned(),
        ),
        ("pins.encryption_key", PIN_ENCRYPTION_KEY.to_owned()),
    ]);
    let remotelock = &settings.own.remotelock;
    let tokens = TokenManager::new(
        system.db.pool.clone(),
        remotelock.token_sealer().unwrap(),
        OAuthClient::new(remotelock).unwrap(),
    );
    DriftPass {
        pool: system.db.pool.clone(),
        client: RemoteLockClient::new(remotelock, tokens).unwrap(),
        sealer: settings.own.pins.sealer().unwrap(),
    }
}

/// Someone at RemoteLock's dashboard: the API with a token of the account.
struct ByHand {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ByHand {
    fn new(system: &TestSystem) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: system.sim.base_url().to_string(),
            token: system.sim.issue_tokens().access_token,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn update(&self, guest: &str, attributes: Value) {
        let body = json!({"type": "access_guest", "attributes": attributes});
        self.call(Method::PUT, &format!("access_persons/{guest}"), Some(body))
            .await;
    }

    async fn remove_accesses(&self, guest: &str) {
        let accesses = self
            .call(
                Method::GET,
                &format!("access_persons/{guest}/accesses"),
                None,
            )
            .await;
        for access in accesses["data"].as_array().unwrap() {
            let id = access["id"].as_str().unwrap();
            self.call(
                Method::DELETE,
                &format!("access_persons/{guest}/accesses/{id}"),
                None,
            )
            .await;
        }
    }
}

/// Books `booking_id` on sp-101 on 12 January 2027 at `hour` (New York) and waits for its PIN.
async fn issued(system: &TestSystem, booking_id: &str, hour: u32) -> Value {
    let body = booking(
        "confirmed",
        &format!("2027-01-12T{hour:02}:00:00-05:00"),
        &format!("2027-01-12T{hour:02}:30:00-05:00"),
        &unique_patron(),
    );
    let (status, answer) = system
        .put(&format!("/v1/bookings/{booking_id}"), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    system.wait_for_pin(booking_id, "issued", WAIT).await
}

/// A system whose one booking, `booking_id`, has its PIN.
async fn with_booking(booking_id: &str) -> TestSystem {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    issued(&system, booking_id, 10).await;
    system
}

/// The booking's one guest that is not deleted.
fn guest(system: &TestSystem, booking_id: &str) -> GuestSnapshot {
    let guests: Vec<GuestSnapshot> = system
        .guests_for(booking_id)
        .into_iter()
        .filter(|g| g.deleted_at.is_none() && g.status != PersonStatus::Deactivated)
        .collect();
    assert!(guests.len() <= 1, "{booking_id}: {guests:?}");
    guests
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{booking_id} has no live guest"))
}

fn live_on_lock(system: &TestSystem, lock: &str, booking_id: &str) -> Option<GuestSnapshot> {
    system
        .sim
        .live_guests_on_lock(lock)
        .into_iter()
        .find(|g| g.name.ends_with(&format!(" · {booking_id}")))
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pass(drift: &DriftPass, mode: Mode) -> PassReport {
    drift
        .run_exclusive(mode)
        .await
        .unwrap()
        .expect("no other pass")
}

fn outcome_of(report: &PassReport, booking_id: &str) -> Option<(Vec<&'static str>, Outcome)> {
    report
        .findings
        .iter()
        .find(|f| f.booking_id.as_str() == booking_id)
        .map(|f| (f.kinds.iter().map(|k| k.as_str()).collect(), f.outcome))
}

async fn drift_history(system: &TestSystem, booking_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT detail FROM pin_history WHERE booking_id = $1 AND detail LIKE '%drift%' ORDER BY id",
    )
    .bind(booking_id)
    .fetch_all(&system.db.pool)
    .await
    .unwrap()
}

async fn admin_get(system: &TestSystem, path: &str) -> Value {
    let admin = system.admin_api();
    let (status, body) = admin.call(admin.request(Method::GET, path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn open_failures(system: &TestSystem) -> Vec<Value> {
    admin_get(system, "/api/v1/failures").await["failures"]
        .as_array()
        .expect("a list")
        .clone()
}

/// `pin.issued` events of the booking: each is a PIN email.
async fn emails(system: &TestSystem, booking_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = 'pin.issued' AND payload->'data'->>'booking_id' = $1")
        .bind(booking_id)
        .fetch_one(&system.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_drift_case_is_repaired_and_a_guest_lockbridge_did_not_make_is_left_alone() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    let hand = ByHand::new(&system);
    let cases = [
        "deleted",
        "deactivated",
        "window",
        "pin",
        "access",
        "cancelled",
    ];
    for (i, case) in cases.iter().enumerate() {
        issued(&system, case, 9 + i as u32).await;
    }
    // A guest staff made themselves on the same lock: never lockbridge's to touch.
    let theirs = hand
        .call(
            Method::POST,
            "access_persons",
            Some(json!({"type": "access_guest", "attributes": {"name": "Contractor",
                "pin": "730519", "starts_at": "2027-01-12T08:00:00", "ends_at": "2027-01-12T18:00:00"}})),
        )
        .await;
    let theirs = theirs["data"]["id"].as_str().unwrap().to_owned();
    hand.call(
        Method::POST,
        &format!("access_persons/{theirs}/accesses"),
        Some(json!({"attributes": {"accessible_type": "lock", "accessible_id": lock}})),
    )
    .await;

    let before: std::collections::HashMap<&str, GuestSnapshot> =
        cases.iter().map(|c| (*c, guest(&system, c))).collect();
    let cancel = system
        .intake_api()
        .request(Method::DELETE, "/v1/bookings/cancelled")
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    system.wait_for_pin("cancelled", "revoked", WAIT).await;
    system.wait_for_outbox_drained(WAIT).await;

    // Behind lockbridge's back.
    hand.call(
        Method::DELETE,
        &format!("access_persons/{}", before["deleted"].id),
        None,
    )
    .await;
    hand.call(
        Method::PUT,
        &format!("access_persons/{}/deactivate", before["deactivated"].id),
        Some(json!({})),
    )
    .await;
    hand.update(
        &before["window"].id,
        json!({"starts_at": "2027-01-12T06:00:00", "ends_at": "2027-01-12T23:00:00"}),
    )
    .await;
    hand.update(&before["pin"].id, json!({"pin": "915037"}))
        .await;
    hand.remove_accesses(&before["access"].id).await;
    system.sim.reactivate_guest(&before["cancelled"].id);
    let emails_before: Vec<i64> = {
        let mut counts = Vec::new();
        for case in cases {
            counts.push(emails(&system, case).await);
        }
        counts
    };

    let drift = drift_pass(&system);
    // A dry run finds each case and changes nothing.
    let state = system.sim.guests();
    let records: Vec<(String, String)> =
        sqlx::query_as("SELECT booking_id, updated_at::text FROM booking_pins ORDER BY booking_id")
            .fetch_all(&system.db.pool)
            .await
            .unwrap();
    let dry = pass(&drift, Mode::DryRun).await;
    let expected = [
        ("deleted", vec!["guest_deleted"]),
        ("deactivated", vec!["guest_deactivated"]),
        ("window", vec!["window_changed"]),
        ("pin", vec!["pin_changed"]),
        ("access", vec!["access_removed"]),
        ("cancelled", vec!["cancelled_guest_active"]),
    ];
    for (case, kinds) in &expected {
        assert_eq!(
            outcome_of(&dry, case),
            Some((kinds.clone(), Outcome::Found)),
            "{case}"
        );
    }
    assert_eq!(dry.findings.len(), expected.len(), "{dry:?}");
    assert_eq!(format!("{:?}", system.sim.guests()), format!("{state:?}"));
    let after_dry: Vec<(String, String)> =
        sqlx::query_as("SELECT booking_id, updated_at::text FROM booking_pins ORDER BY booking_id")
            .fetch_all(&system.db.pool)
            .await
            .unwrap();
    assert_eq!(after_dry, records, "a dry run writes nothing");

    // Both recreated guests (RemoteLock cannot reactivate one) get the PIN the patron has,
    // unless RemoteLock refuses it: then a new PIN, and an email. One create is refused here;
    // which of the two it hits is the order the repairs run in.
    system.sim.refuse_next_pins(1, PinCheck::Create);
    let repaired = pass(&drift, Mode::Repair).await;
    for (case, kinds) in &expected {
        assert_eq!(
            outcome_of(&repaired, case),
            Some((kinds.clone(), Outcome::RepairQueued)),
            "{case}"
        );
    }

    wait_until("every repair done", async || {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM booking_pins WHERE drift_found_at IS NOT NULL OR state NOT IN ('issued', 'revoked')",
        )
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
        pending == 0
    })
    .await;
    system.wait_for_outbox_drained(WAIT).await;

    let mut renewed = Vec::new();
    for case in ["deleted", "deactivated"] {
        let guest = live_on_lock(&system, &lock, case).expect("a new guest");
        assert_ne!(guest.id, before[case].id, "{case}: a new guest");
        if guest.pin != before[case].pin {
            renewed.push(case);
        }
    }
    assert_eq!(renewed.len(), 1, "only the refused PIN is new: {renewed:?}");
    let i = cases.iter().position(|c| *c == renewed[0]).unwrap();
    assert_eq!(
        emails(&system, renewed[0]).await,
        emails_before[i] + 1,
        "a new PIN is emailed"
    );
    system.wait_for_emails_recorded(renewed[0], 2, WAIT).await;

    let window = live_on_lock(&system, &lock, "window").unwrap();
    assert_eq!(
        (window.id.as_str(), window.starts_at, window.ends_at),
        (
            before["window"].id.as_str(),
            before["window"].starts_at,
            before["window"].ends_at
        )
    );
    let pin = live_on_lock(&system, &lock, "pin").unwrap();
    assert_eq!(
        (pin.id.as_str(), &pin.pin),
        (before["pin"].id.as_str(), &before["pin"].pin)
    );
    let access = live_on_lock(&system, &lock, "access").expect("granted again");
    assert_eq!(access.id, before["access"].id);
    assert!(
        live_on_lock(&system, &lock, "cancelled").is_none(),
        "the door is shut again"
    );
    // What the patrons were told still holds: no email but for the new PIN.
    for (i, case) in cases.iter().enumerate() {
        if *case != renewed[0] {
            assert_eq!(emails(&system, case).await, emails_before[i], "{case}");
        }
    }
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = 'pin.revoked'")
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    assert_eq!(revoked, 1, "the cancellation was announced once");

    // The history says what was found and what was done (trace and the staff page show it).
    for case in cases {
        let noted = drift_history(&system, case).await;
        assert!(noted[0].starts_with("drift: "), "{case}: {noted:?}");
    }
    // Set back as the patron was told: all but a guest recreated with a new PIN.
    let set_back = [
        "deleted",
        "deactivated",
        "window",
        "pin",
        "access",
        "cancelled",
    ];
    for case in set_back.iter().filter(|case| **case != renewed[0]) {
        let noted = drift_history(&system, case).await;
        assert!(
            noted
                .iter()
                .any(|d| d.contains("after drift") || d.starts_with("drift repaired")),
            "{case}: {noted:?}"
        );
    }
    let view = admin_get(&system, "/api/v1/bookings/window").await;
    let said = view["history"].to_string();
    assert!(said.contains("window was changed in RemoteLock"), "{said}");

    // Theirs: untouched, never asked about.
    let contractor = system
        .sim
        .guests()
        .into_iter()
        .find(|g| g.id == theirs)
        .unwrap();
    assert_eq!(
        (contractor.status, contractor.pin.as_deref()),
        (PersonStatus::Upcoming, Some("730519"))
    );
    assert!(
        !system
            .sim
            .requests()
            .iter()
            .any(|r| r.path.contains(&theirs) && r.method != "POST"),
        "the contractor's guest was looked at"
    );
    // And a second pass has nothing left to do.
    let again = pass(&drift, Mode::Repair).await;
    assert!(again.findings.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_lock_gone_from_the_account_is_reported_once() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    issued(&system, "gone", 10).await;
    system.sim.deregister_lock(&lock);
    let drift = drift_pass(&system);
    let report = pass(&drift, Mode::Repair).await;
    assert_eq!(
        outcome_of(&report, "gone"),
        Some((vec!["lock_gone"], Outcome::Reported))
    );
    let failures = open_failures(&system).await;
    let failure = failures
        .iter()
        .find(|f| f["booking_id"] == "gone")
        .expect("reported");
    assert_eq!(failure["kind"], "pin_not_issued");
    assert!(
        failure["reason"]
            .as_str()
            .unwrap()
            .contains("no longer in the RemoteLock account"),
        "{failure}"
    );
    assert_eq!(system.get_booking("gone").await["pin"]["state"], "failed");
    // Reported once: the next pass has nothing new to say.
    assert!(pass(&drift, Mode::Repair).await.findings.is_empty());
}

#[tokio::test]
async fn a_guest_whose_repair_fails_is_reported() {
    let system = with_booking("stuck").await;
    let hand = ByHand::new(&system);
    let gone = guest(&system, "stuck");
    hand.call(Method::DELETE, &format!("access_persons/{}", gone.id), None)
        .await;
    system.sim.inject(
        Fault::new("/access_persons", FaultKind::Status(422))
            .on(Method::POST)
            .times(10),
    );
    let report = pass(&drift_pass(&system), Mode::Repair).await;
    assert_eq!(
        outcome_of(&report, "stuck"),
        Some((vec!["guest_deleted"], Outcome::RepairQueued))
    );
    system.wait_for_pin("stuck", "failed", WAIT).await;
    let failures = open_failures(&system).await;
    assert!(
        failures
            .iter()
            .any(|f| f["booking_id"] == "stuck" && f["kind"] == "pin_not_issued"),
        "{failures:?}"
    );
}

#[tokio::test]
async fn two_passes_at_once_repair_once() {
    let system = with_booking("twice").await;
    let hand = ByHand::new(&system);
    hand.update(&guest(&system, "twice").id, json!({"pin": "915037"}))
        .await;
    // The first pass is slow to read the locks: the second meets it.
    system
        .sim
        .inject(Fault::new("/devices", FaultKind::Latency(Duration::from_secs(2))).on(Method::GET));
    let (one, other) = (drift_pass(&system), drift_pass(&system));
    let first = tokio::spawn(async move { one.run_exclusive(Mode::Repair).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        other.run_exclusive(Mode::Repair).await.unwrap().is_none(),
        "one pass at a time"
    );
    let first = first.await.unwrap().expect("the first pass ran");
    assert_eq!(first.findings.len(), 1);
    system.wait_for_pin("twice", "issued", WAIT).await;
    let queued = drift_history(&system, "twice").await;
    assert_eq!(
        queued.iter().filter(|d| d.starts_with("drift: ")).count(),
        1,
        "{queued:?}"
    );
}

#[tokio::test]
async fn the_pass_spends_only_what_bookings_leave() {
    let system = with_booking("budget").await;
    // The window has 40 of 120 requests left: enough for bookings, not for the pass.
    sqlx::query("UPDATE remotelock_budget SET window_limit = 120, remaining = 40, resets_at = now() + interval '50 seconds'")
        .execute(&system.db.pool)
        .await
        .unwrap();
    let sent = system.sim.requests().len();
    let drift = drift_pass(&system);
    match drift.run_exclusive(Mode::Repair).await {
        Err(DriftError::RemoteLock(RemoteLockError::Transient {
            cause: TransientCause::BudgetSpent,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(system.sim.requests().len(), sent, "the pass sent nothing");
    // Routine work (a booking further ahead) still gets its requests.
    drift
        .client
        .for_work(Urgency::Routine)
        .locks()
        .await
        .expect("routine work fits");
    assert_eq!(system.sim.requests().len(), sent + 1);
}

/// The provisioner runs the pass by itself every `reconcile.interval`.
#[tokio::test]
async fn the_provisioner_repairs_drift_every_interval() {
    let system = TestSystem::start_with(
        remotelock_sim::SimConfig::default(),
        &[("reconcile.interval", "300ms".to_owned())],
    )
    .await;
    let lock = system.ready_with_link().await;
    issued(&system, "periodic", 10).await;
    let hand = ByHand::new(&system);
    hand.remove_accesses(&guest(&system, "periodic").id).await;
    assert!(live_on_lock(&system, &lock, "periodic").is_none());
    wait_until("the access is granted again", async || {
        live_on_lock(&system, &lock, "periodic").is_some()
    })
    .await;
    let provisioner = system.provisioner.as_ref().expect("running");
    let metrics =
        lockbridge_e2e::scrape::Scrape::of(&system.http, &provisioner.url("/metrics")).await;
    let repaired = [("kind", "access_removed"), ("outcome", "repair_queued")];
    assert!(
        metrics
            .value("lockbridge_drift_total", &repaired)
            .is_some_and(|n| n >= 1.0),
        "the repair is counted"
    );
}
