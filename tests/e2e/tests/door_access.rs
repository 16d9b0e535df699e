//! Door access that is right in every case (issue 5), through the HTTP APIs against real
//! PostgreSQL, RabbitMQ and SMTP and a RemoteLock simulator as strict as the public facts:
//! PIN conflicts wherever RemoteLock reports them, bookings stored before their space was
//! linked, bookings that ended, cancels racing the guest's creation, revocations that fail,
//! and patron corrections.

use std::time::Duration;

use lockbridge_e2e::system::{TestSystem, booking, pin_state_is, unique_patron};
use remotelock_sim::{
    Fault, FaultKind, Method, PersonStatus, PinCheck, PinConflictError, PinUniqueness, SimConfig,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A confirmed booking of `space` on 12 January 2027 (New York), `hour` o'clock for an hour.
fn january(space: &str, hour: u32, email: &str) -> Value {
    let mut body = booking(
        "confirmed",
        &format!("2027-01-12T{hour:02}:00:00-05:00"),
        &format!("2027-01-12T{:02}:00:00-05:00", hour + 1),
        email,
    );
    body["space_id"] = json!(space);
    body
}

async fn put_booking(system: &TestSystem, booking_id: &str, body: &Value) {
    let (status, stored) = system
        .put(&format!("/v1/bookings/{booking_id}"), body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stored}");
}

async fn cancel(system: &TestSystem, booking_id: &str) {
    let response = system
        .intake_api()
        .request(Method::DELETE, &format!("/v1/bookings/{booking_id}"))
        .send()
        .await
        .expect("intake answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

async fn open_failures(system: &TestSystem) -> Vec<Value> {
    let admin = system.admin_api();
    let (status, body) = admin
        .call(admin.request(Method::GET, "/api/v1/failures"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["failures"].as_array().expect("a list").clone()
}

/// Many bookings on one lock with 4-digit PINs, against RemoteLock refusing PINs in every
/// way it may: each booking ends with exactly one live guest on the lock, whose PIN is the one
/// the patron was last emailed and the one GET shows; none fails.
async fn every_booking_gets_one_live_guest_with_the_emailed_pin(sim: SimConfig) {
    const BOOKINGS: usize = 30;
    let sim = SimConfig {
        // The point is correctness, not the pace RemoteLock allows.
        rate_limit_per_minute: 100_000,
        ..sim
    };
    let settings = [
        ("provisioner.pin_digits", "4".to_owned()),
        ("sync.poll_interval", "300ms".to_owned()),
    ];
    let system = TestSystem::start_with(sim, &settings).await;
    let lock = system.ready_with_link().await;
    // People lockbridge does not know of hold PINs on the lock already.
    for (name, pin) in [
        ("Caretaker", "4821"),
        ("Cleaner", "7305"),
        ("Manager", "9150"),
    ] {
        system.sim.add_access_user(name, pin, Some(&lock));
    }
    system.sim.refuse_next_pins(3, PinCheck::Create);
    system.sim.refuse_next_pins(3, PinCheck::Grant);
    system.sim.refuse_next_pins(2, PinCheck::Update);

    let patrons: Vec<(String, String)> = (0..BOOKINGS)
        .map(|i| (format!("many-{i}"), unique_patron()))
        .collect();
    for (i, (booking_id, patron)) in patrons.iter().enumerate() {
        put_booking(
            &system,
            booking_id,
            &january("sp-101", 8 + (i % 12) as u32, patron),
        )
        .await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    for (booking_id, patron) in &patrons {
        loop {
            let shown = system.get_booking(booking_id).await;
            let pin = shown["pin"]["pin"].as_str().map(str::to_owned);
            let live: Vec<_> = system
                .sim
                .live_guests_on_lock(&lock)
                .into_iter()
                .filter(|g| g.name.ends_with(&format!(" · {booking_id}")))
                .collect();
            let emails = system.mailbox.to(patron).await;
            let agreed = pin_state_is(&shown["pin"]["state"], "issued")
                && live.len() == 1
                && live[0].pin == pin
                && emails
                    .last()
                    .zip(pin.as_deref())
                    .is_some_and(|(email, pin)| email.text.contains(pin));
            if agreed {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{booking_id}: GET {shown}, live guests {live:?}, {} emails",
                emails.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let pins: std::collections::HashSet<_> = system
        .sim
        .live_guests_on_lock(&lock)
        .into_iter()
        .filter_map(|g| g.pin)
        .collect();
    assert_eq!(pins.len(), BOOKINGS, "no two live guests share a PIN");
    assert!(open_failures(&system).await.is_empty());
}

#[tokio::test]
async fn pins_refused_at_grant_because_used_on_the_device_are_replaced() {
    every_booking_gets_one_live_guest_with_the_emailed_pin(SimConfig {
        pin_uniqueness: PinUniqueness::DeviceAtGrant,
        pin_conflict_error: PinConflictError::UsedOnDevice,
        ..SimConfig::default()
    })
    .await;
}

#[tokio::test]
async fn pins_refused_at_create_because_taken_in_the_account_are_replaced() {
    every_booking_gets_one_live_guest_with_the_emailed_pin(SimConfig {
        pin_uniqueness: PinUniqueness::Account,
        pin_conflict_error: PinConflictError::PinTaken,
        ..SimConfig::default()
    })
    .await;
}

#[tokio::test]
async fn pins_the_lock_refuses_when_it_syncs_are_replaced() {
    every_booking_gets_one_live_guest_with_the_emailed_pin(SimConfig {
        pin_uniqueness: PinUniqueness::DeviceAtSync,
        ..SimConfig::default()
    })
    .await;
}

#[tokio::test]
async fn a_pin_conflict_reported_at_sync_gives_the_guest_another_pin_and_the_patron_an_email() {
    let sim = SimConfig {
        pin_uniqueness: PinUniqueness::DeviceAtSync,
        ..SimConfig::default()
    };
    let system = TestSystem::start_with(sim, &[("sync.poll_interval", "300ms".to_owned())]).await;
    let lock = system.ready_with_link().await;
    let patron = unique_patron();
    put_booking(&system, "sync-1", &january("sp-101", 10, &patron)).await;
    let issued = system.wait_for_pin("sync-1", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    let old_pin = issued["pin"]["pin"].as_str().unwrap().to_owned();
    let guest = system.guests_for("sync-1")[0].clone();

    // Long after the API calls succeeded, the lock says the PIN is already used on it.
    system
        .sim
        .report_sync_failure(&guest.id, &lock, "pin_conflict");
    let emails = system.mailbox.wait_for(&patron, 2, WAIT).await;
    let now = system.get_booking("sync-1").await;
    let new_pin = now["pin"]["pin"].as_str().expect("a PIN").to_owned();
    assert_ne!(new_pin, old_pin);
    assert!(emails.iter().any(|e| e.text.contains(&new_pin)));
    let live = system.sim.live_guests_on_lock(&lock);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        (live[0].id.as_str(), live[0].pin.as_deref()),
        (guest.id.as_str(), Some(new_pin.as_str()))
    );

    // A failure for another reason is kept in the history, and changes no PIN.
    system.sim.report_sync_failure(&guest.id, &lock, "timeout");
    let admin = system.admin_api();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, view) = admin
            .call(admin.request(Method::GET, "/api/v1/bookings/sync-1"))
            .await;
        let noted = view["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"].as_str().is_some_and(|r| r.contains("timeout")));
        if noted {
            assert_eq!(view["pin"]["pin"], new_pin.as_str());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(system.mailbox.to(&patron).await.len(), 2);
}

#[tokio::test]
async fn linking_a_space_schedules_its_upcoming_confirmed_bookings() {
    let system = TestSystem::start().await;
    system.authorize().await;
    system.catalogue().await;
    let (early, late, tentative, past) = (
        unique_patron(),
        unique_patron(),
        unique_patron(),
        unique_patron(),
    );
    put_booking(&system, "pre-1", &january("sp-101", 9, &early)).await;
    put_booking(&system, "pre-2", &january("sp-101", 11, &late)).await;
    let mut waiting = january("sp-101", 13, &tentative);
    waiting["status"] = json!("tentative");
    put_booking(&system, "pre-3", &waiting).await;
    let ended = booking(
        "confirmed",
        "2025-01-14T10:00:00-05:00",
        "2025-01-14T11:00:00-05:00",
        &past,
    );
    put_booking(&system, "pre-4", &ended).await;
    for id in ["pre-1", "pre-2", "pre-3", "pre-4"] {
        assert_eq!(
            system.get_booking(id).await["pin"]["state"],
            "not_applicable",
            "{id}: nothing will act on it, so it is not pending"
        );
    }

    let lock = system.sim.seed().locks[0].id.clone();
    let (status, link) = system.link("sp-101", &lock).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["upcoming_bookings"], 2, "{link}");
    for (id, patron) in [("pre-1", &early), ("pre-2", &late)] {
        system.wait_for_pin(id, "issued", WAIT).await;
        system.mailbox.wait_for(patron, 1, WAIT).await;
    }
    assert!(system.guests_for("pre-3").is_empty());
    assert!(system.guests_for("pre-4").is_empty());

    // Unlinked: existing guests stay; new bookings of the space get no PIN.
    let admin = system.admin_api();
    let (status, _) = admin
        .call(admin.request(Method::DELETE, "/api/v1/links/sp-101"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = unique_patron();
    put_booking(&system, "post-1", &january("sp-101", 15, &after)).await;
    system.wait_for_pin("post-1", "not_applicable", WAIT).await;
    assert!(system.guests_for("post-1").is_empty());
    assert_eq!(system.guests_for("pre-1")[0].status, PersonStatus::Upcoming);
}

#[tokio::test]
async fn an_ended_booking_makes_no_remotelock_call_and_sends_no_email() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = unique_patron();
    let last_year = booking(
        "confirmed",
        "2025-11-04T10:00:00-05:00",
        "2025-11-04T11:00:00-05:00",
        &patron,
    );
    let requests_before = system.sim.requests().len();
    put_booking(&system, "old-1", &last_year).await;
    let shown = system.wait_for_pin("old-1", "expired", WAIT).await;
    assert!(shown["pin"]["pin"].is_null(), "{shown}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls: Vec<_> = system.sim.requests()[requests_before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(calls.is_empty(), "no RemoteLock call: {calls:?}");
    assert!(system.mailbox.to(&patron).await.is_empty());
}

#[tokio::test]
async fn a_cancel_arriving_while_the_guest_is_created_ends_with_no_live_guest_and_no_email() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    system.sim.inject(
        Fault::new(
            "/access_persons",
            FaultKind::Latency(Duration::from_secs(3)),
        )
        .on(Method::POST),
    );
    let patron = unique_patron();
    put_booking(&system, "race-1", &january("sp-101", 10, &patron)).await;
    // Cancel while RemoteLock is still making the guest.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !system
        .sim
        .requests()
        .iter()
        .any(|r| r.method == Method::POST && r.path.ends_with("/access_persons"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no create was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel(&system, "race-1").await;
    system.wait_for_pin("race-1", "revoked", WAIT).await;
    let guests = system.guests_for("race-1");
    assert_eq!(guests.len(), 1, "{guests:?}");
    assert_eq!(guests[0].status, PersonStatus::Deactivated);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        system.mailbox.to(&patron).await.is_empty(),
        "the PIN of a cancelled booking is never emailed"
    );
}

#[tokio::test]
async fn a_refused_revocation_alerts_staff_keeps_trying_and_a_retry_finishes_it() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    let patron = unique_patron();
    put_booking(&system, "stuck-1", &january("sp-101", 10, &patron)).await;
    system.wait_for_pin("stuck-1", "issued", WAIT).await;
    system
        .sim
        .inject(Fault::new("/access_persons/", FaultKind::Status(422)).on(Method::PUT));
    cancel(&system, "stuck-1").await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let failure = loop {
        let open = open_failures(&system).await;
        if let Some(failure) = open.into_iter().find(|f| f["kind"] == "pin_not_revoked") {
            break failure;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failure opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failure["booking_id"], "stuck-1");
    let reason = failure["reason"].as_str().unwrap();
    assert!(reason.contains("still opens the door"), "{reason}");
    let pin = system.guests_for("stuck-1")[0].pin.clone().unwrap();
    assert!(!reason.contains(&pin), "no PIN in a failure: {reason}");
    // Still live on the door, and the job is not given up.
    assert_eq!(system.sim.live_guests_on_lock(&lock).len(), 1);
    // The failure is reported while the run ends: wait for the run to have ended.
    let job_state = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT state::text FROM jobs WHERE queue = 'provision' AND job_key = 'stuck-1'",
        )
        .fetch_one(&system.db.pool)
        .await
        .unwrap()
    };
    let mut state = job_state().await;
    while state == "running" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = job_state().await;
    }
    assert_eq!(state, "queued", "a revocation is never given up");
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE queue = 'alert'")
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
    assert_eq!(alerts, 1, "one alert for the failure");

    let alert = &system.mailbox.wait_for(&system.staff, 1, WAIT).await[0];
    assert!(alert.subject.contains("still opens"), "{}", alert.subject);
    assert!(alert.text.contains("stuck-1"), "{}", alert.text);
    assert!(
        !alert.text.contains(&pin) && !alert.html.contains(&pin),
        "no PIN in an alert"
    );

    let admin = system.admin_api();
    let retry = format!("/api/v1/failures/{}/retry", failure["id"]);
    let (status, _) = admin.call(admin.request(Method::POST, &retry)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    system.wait_for_pin("stuck-1", "revoked", WAIT).await;
    assert!(system.sim.live_guests_on_lock(&lock).is_empty());
    assert!(
        open_failures(&system).await.is_empty(),
        "resolved by itself"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        system.mailbox.to(&system.staff).await.len(),
        1,
        "one alert, not one per try"
    );

    // Retrying what is resolved, what does not exist, or without a token changes nothing.
    let (status, problem) = admin.call(admin.request(Method::POST, &retry)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = admin
        .call(admin.request(Method::POST, "/api/v1/failures/999999/retry"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, problem) = admin
        .call(admin.request(Method::POST, "/api/v1/failures/first/retry"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let anonymous = admin
        .http
        .get(admin.url("/api/v1/failures"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_patron_corrected_upstream_gets_the_same_pin_at_the_new_address() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let (typo, corrected) = (unique_patron(), unique_patron());
    let mut body = january("sp-101", 10, &typo);
    body["revision"] = json!(1);
    put_booking(&system, "fix-1", &body).await;
    let first = system.wait_for_pin("fix-1", "issued", WAIT).await;
    system.mailbox.wait_for(&typo, 1, WAIT).await;

    body["revision"] = json!(2);
    body["patron"]["email"] = json!(corrected);
    put_booking(&system, "fix-1", &body).await;
    let emails = system.mailbox.wait_for(&corrected, 1, WAIT).await;
    let pin = first["pin"]["pin"].as_str().unwrap();
    assert!(emails[0].text.contains(pin), "the same PIN");
    assert_eq!(system.guests_for("fix-1").len(), 1);
    assert_eq!(system.guests_for("fix-1")[0].pin.as_deref(), Some(pin));
    assert_eq!(system.mailbox.to(&typo).await.len(), 1);
}

#[tokio::test]
async fn staff_see_a_booking_with_its_pin_and_history_and_reissue_the_pin_on_the_same_guest() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = unique_patron();
    put_booking(&system, "staff-1", &january("sp-101", 10, &patron)).await;
    let issued = system.wait_for_pin("staff-1", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    let old_pin = issued["pin"]["pin"].as_str().unwrap().to_owned();
    let guest = system.guests_for("staff-1")[0].clone();

    let admin = system.admin_api();
    let (status, view) = admin
        .call(admin.request(Method::GET, "/api/v1/bookings/staff-1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["space_name"], "Study Room 101");
    assert!(pin_state_is(&view["pin"]["state"], "issued"), "{view}");
    assert_eq!(view["pin"]["pin"], old_pin.as_str());
    assert_eq!(view["pin"]["pin_version"], 1);
    assert_eq!(view["pin"]["valid_from"], "2027-01-12T14:45:00Z");
    assert_eq!(view["pin"]["local_valid_from"], "2027-01-12T09:45:00");
    assert_eq!(view["pin"]["local_valid_until"], "2027-01-12T11:05:00");
    assert_eq!(view["pin"]["lock_time_zone"], "America/New_York");
    let url = view["remotelock_url"].as_str().expect("a dashboard link");
    assert!(url.ends_with(&guest.id), "{url}");
    let history = view["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["state"] == "issued" && h["at"].is_string()),
        "{history:?}"
    );

    let (status, answer) = admin
        .call(admin.request(Method::POST, "/api/v1/bookings/staff-1/pin/reissue"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let emails = system.mailbox.wait_for(&patron, 2, WAIT).await;
    let reissued = system.wait_for_pin("staff-1", "issued", WAIT).await;
    let new_pin = reissued["pin"]["pin"].as_str().unwrap();
    assert_ne!(new_pin, old_pin, "a new PIN");
    let guests = system.guests_for("staff-1");
    assert_eq!(guests.len(), 1, "the same guest: {guests:?}");
    assert_eq!(guests[0].id, guest.id);
    assert_eq!(guests[0].pin.as_deref(), Some(new_pin));
    let newest = emails
        .iter()
        .find(|e| e.text.contains(new_pin))
        .expect("an email with the new PIN");
    assert!(!newest.text.contains(&old_pin));
    let (_, view) = admin
        .call(admin.request(Method::GET, "/api/v1/bookings/staff-1"))
        .await;
    assert_eq!(view["pin"]["pin_version"], 2);
    assert!(
        view["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"].as_str().is_some_and(|r| r.contains("reissued"))),
        "{view}"
    );

    // No live PIN, no booking, no token: refused, nothing changes.
    let unlocked = unique_patron();
    put_booking(&system, "staff-2", &january("sp-102", 10, &unlocked)).await;
    system.wait_for_pin("staff-2", "not_applicable", WAIT).await;
    let (status, problem) = admin
        .call(admin.request(Method::POST, "/api/v1/bookings/staff-2/pin/reissue"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    cancel(&system, "staff-1").await;
    system.wait_for_pin("staff-1", "revoked", WAIT).await;
    let (status, problem) = admin
        .call(admin.request(Method::POST, "/api/v1/bookings/staff-1/pin/reissue"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = admin
        .call(admin.request(Method::POST, "/api/v1/bookings/nobody/pin/reissue"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin
        .call(admin.request(Method::GET, "/api/v1/bookings/nobody"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let anonymous = admin
        .http
        .post(admin.url("/api/v1/bookings/staff-1/pin/reissue"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cancel_while_the_authorization_is_gone_alerts_that_the_door_opens_until_reauthorized() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    let patron = unique_patron();
    put_booking(&system, "noauth-1", &january("sp-101", 10, &patron)).await;
    system.wait_for_pin("noauth-1", "issued", WAIT).await;
    system.revoke_authorization_at_remotelock().await;
    cancel(&system, "noauth-1").await;

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut kinds: Vec<String> = open_failures(&system)
            .await
            .iter()
            .map(|f| f["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        if kinds == ["authorization", "pin_not_revoked"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "failures: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        system.sim.live_guests_on_lock(&lock).len(),
        1,
        "the door still opens"
    );
    let alerts = system.mailbox.wait_for(&system.staff, 2, WAIT).await;
    assert!(
        alerts.iter().any(|a| a.subject.contains("still opens")),
        "{:?}",
        alerts.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );

    system.authorize().await;
    system.wait_for_pin("noauth-1", "revoked", WAIT).await;
    assert!(system.sim.live_guests_on_lock(&lock).is_empty());
    let deadline = tokio::time::Instant::now() + WAIT;
    while !open_failures(&system).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "failures stay open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_booking_moved_into_the_past_does_not_keep_a_door_at_its_old_times() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    let patron = unique_patron();
    let mut body = january("sp-101", 10, &patron);
    body["revision"] = json!(1);
    put_booking(&system, "past-1", &body).await;
    system.wait_for_pin("past-1", "issued", WAIT).await;

    body["revision"] = json!(2);
    body["starts_at"] = json!("2025-01-14T10:00:00-05:00");
    body["ends_at"] = json!("2025-01-14T11:00:00-05:00");
    put_booking(&system, "past-1", &body).await;
    system.wait_for_pin("past-1", "revoked", WAIT).await;
    assert!(system.sim.live_guests_on_lock(&lock).is_empty());
    assert_eq!(
        system.guests_for("past-1")[0].status,
        PersonStatus::Deactivated
    );
}
