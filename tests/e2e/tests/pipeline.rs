//! The whole pipeline through the HTTP APIs: booking in → guest with a PIN in the (simulated)
//! RemoteLock → email out, against real PostgreSQL, RabbitMQ and SMTP.

use std::time::Duration;

use chrono::NaiveDateTime;
use lockbridge_e2e::system::{TestSystem, booking, unique_patron};
use remotelock_sim::{Fault, FaultKind, Method, PersonStatus, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").expect("local time")
}

/// Tuesday 2027-01-12, 14:00–15:30 in New York (EST, UTC−5).
fn january_booking(status: &str, email: &str) -> Value {
    booking(
        status,
        "2027-01-12T14:00:00-05:00",
        "2027-01-12T15:30:00-05:00",
        email,
    )
}

#[tokio::test]
async fn a_confirmed_booking_gets_one_guest_on_its_lock_and_one_email_with_that_pin() {
    let system = TestSystem::start().await;
    let lock = system.ready_with_link().await;
    let patron = unique_patron();
    let (status, stored) = system
        .put("/v1/bookings/e2e-1", &january_booking("confirmed", &patron))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stored}");

    let issued = system.wait_for_pin("e2e-1", "issued", WAIT).await;
    let guests = system.guests_for("e2e-1");
    assert_eq!(guests.len(), 1, "exactly one guest: {guests:?}");
    let guest = &guests[0];
    assert_eq!(guest.pin.as_deref(), issued["pin"]["pin"].as_str());
    // Default lead time 15 min, grace 5 min, written as New York wall-clock time.
    assert_eq!(guest.starts_at, local("2027-01-12T13:45:00"));
    assert_eq!(guest.ends_at, local("2027-01-12T15:35:00"));
    assert_eq!(issued["pin"]["valid_from"], "2027-01-12T18:45:00Z");
    let accesses: Vec<_> = system
        .sim
        .accesses()
        .into_iter()
        .filter(|a| a.access_person_id == guest.id)
        .collect();
    assert_eq!(accesses.len(), 1);
    assert_eq!(accesses[0].accessible_id, lock);
    assert_eq!(accesses[0].accessible_type, "lock");

    let emails = system.mailbox.wait_for(&patron, 1, WAIT).await;
    let pin = guest.pin.as_deref().expect("guest has a PIN");
    assert!(
        emails[0].text.contains(pin),
        "text email has the PIN: {}",
        emails[0].text
    );
    assert!(emails[0].html.contains(pin), "HTML email has the PIN");
    assert!(emails[0].text.contains("Study Room 101"));

    // The same PUT again: nothing new anywhere.
    system
        .put("/v1/bookings/e2e-1", &january_booking("confirmed", &patron))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(system.guests_for("e2e-1").len(), 1);
    assert_eq!(system.mailbox.to(&patron).await.len(), 1);
}

#[tokio::test]
async fn the_same_event_delivered_twice_makes_one_guest_and_one_email() {
    use lockbridge_runtime::amqp::{Broker, OutgoingMessage, Publisher};

    let (system, patron, _) = issued_booking("e2e-dup").await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;

    // Redeliver the booking.confirmed event exactly as the relay sent it.
    let (event_id, payload): (uuid::Uuid, Value) = sqlx::query_as(
        "SELECT event_id, payload FROM outbox WHERE routing_key = 'booking.confirmed'",
    )
    .fetch_one(&system.db.pool)
    .await
    .unwrap();
    let broker = Broker::connect(system.broker.url.clone().into(), "redeliver")
        .await
        .unwrap();
    let mut publisher = Publisher::new(broker.clone());
    let body = serde_json::to_vec(&payload).unwrap();
    publisher
        .publish(&OutgoingMessage {
            exchange: "lockbridge.bookings",
            routing_key: "booking.confirmed",
            event_id,
            correlation_id: event_id,
            traceparent: None,
            payload: &body,
        })
        .await
        .unwrap();
    // And the pin.issued event too: the notifier must not send a second email.
    let (pin_event_id, pin_payload): (uuid::Uuid, Value) =
        sqlx::query_as("SELECT event_id, payload FROM outbox WHERE routing_key = 'pin.issued'")
            .fetch_one(&system.db.pool)
            .await
            .unwrap();
    let body = serde_json::to_vec(&pin_payload).unwrap();
    publisher
        .publish(&OutgoingMessage {
            exchange: "lockbridge.pins",
            routing_key: "pin.issued",
            event_id: pin_event_id,
            correlation_id: pin_event_id,
            traceparent: None,
            payload: &body,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(system.guests_for("e2e-dup").len(), 1);
    assert_eq!(system.mailbox.to(&patron).await.len(), 1);
    let consumed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
    assert_eq!(
        consumed, 2,
        "each event claimed once, the redeliveries acknowledged without effect"
    );
    broker.close().await;
}

#[tokio::test]
async fn a_booking_for_an_unlinked_space_makes_no_remotelock_call_and_no_email() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = unique_patron();
    let mut body = january_booking("confirmed", &patron);
    body["space_id"] = json!("sp-102");
    system.put("/v1/bookings/e2e-unlinked", &body).await;
    // Wait until the provisioner has looked at it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state::text FROM booking_pins WHERE booking_id = 'e2e-unlinked'",
        )
        .fetch_optional(&system.db.pool)
        .await
        .unwrap();
        if state.as_deref() == Some("not_applicable") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "provisioner never recorded the booking: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        system.get_booking("e2e-unlinked").await["pin"]["state"],
        "not_applicable"
    );
    assert!(
        system
            .sim
            .requests()
            .iter()
            .all(|r| !r.path.contains("/access_persons")),
        "no guest call"
    );
    assert!(system.sim.guests().is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(system.mailbox.to(&patron).await.is_empty());
    system.wait_for_outbox_drained(WAIT).await;
}

#[tokio::test]
async fn a_tentative_booking_gets_its_pin_only_once_confirmed() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = unique_patron();
    system
        .put(
            "/v1/bookings/e2e-tent",
            &january_booking("tentative", &patron),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // No job acts on it until it is confirmed, so it is not shown as pending.
    assert_eq!(
        system.get_booking("e2e-tent").await["pin"]["state"],
        "not_applicable"
    );
    assert!(system.guests_for("e2e-tent").is_empty());
    assert!(system.mailbox.to(&patron).await.is_empty());

    let mut confirmed = january_booking("confirmed", &patron);
    confirmed["revision"] = json!(2);
    system.put("/v1/bookings/e2e-tent", &confirmed).await;
    system.wait_for_pin("e2e-tent", "issued", WAIT).await;
    assert_eq!(system.guests_for("e2e-tent").len(), 1);
    system.mailbox.wait_for(&patron, 1, WAIT).await;
}

/// Puts a confirmed January booking for `patron`.
async fn book(system: &TestSystem, booking_id: &str, patron: &str) {
    let path = format!("/v1/bookings/{booking_id}");
    let (status, body) = system
        .put(&path, &january_booking("confirmed", patron))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// A system with `sp-101` linked and a confirmed January booking whose PIN is issued: the
/// system, the patron's address and the booking as GET shows it.
async fn issued_booking(booking_id: &str) -> (TestSystem, String, Value) {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = unique_patron();
    let path = format!("/v1/bookings/{booking_id}");
    let (status, body) = system
        .put(&path, &january_booking("confirmed", &patron))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let issued = system.wait_for_pin(booking_id, "issued", WAIT).await;
    (system, patron, issued)
}

/// Runs one confirmed booking against a simulator primed with `fault` on guest creation.
async fn survives(fault: FaultKind, extra: &[(&'static str, String)]) -> TestSystem {
    let system = TestSystem::start_with(SimConfig::default(), extra).await;
    system.ready_with_link().await;
    system
        .sim
        .inject(Fault::new("/access_persons", fault).on(Method::POST));
    let patron = unique_patron();
    book(&system, "e2e-fault", &patron).await;
    system
        .wait_for_pin("e2e-fault", "issued", Duration::from_secs(60))
        .await;
    let guests = system.guests_for("e2e-fault");
    assert_eq!(
        guests.len(),
        1,
        "exactly one guest despite the failure: {guests:?}"
    );
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    system
}

#[tokio::test]
async fn a_remotelock_server_error_is_retried_and_issues_exactly_one_guest() {
    let system = survives(FaultKind::Status(503), &[]).await;
    let creates = system
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.method == Method::POST
                && r.path.contains("/access_persons")
                && !r.path.contains("/accesses")
        })
        .count();
    assert!(creates >= 2, "the create was retried");
}

#[tokio::test]
async fn a_remotelock_timeout_is_retried_and_issues_exactly_one_guest() {
    survives(
        FaultKind::Timeout,
        &[("remotelock.request_timeout", "2s".to_owned())],
    )
    .await;
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_instead_of_repeated() {
    let system = survives(FaultKind::DropResponseAfterCommit, &[]).await;
    assert_eq!(
        system
            .sim
            .guests()
            .iter()
            .filter(|g| g.status != PersonStatus::Deactivated)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_call_goes_through() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    system.sim.expire_access_tokens();
    let patron = unique_patron();
    book(&system, "e2e-token", &patron).await;
    system.wait_for_pin("e2e-token", "issued", WAIT).await;
    assert_eq!(system.guests_for("e2e-token").len(), 1);
    assert!(
        system
            .sim
            .requests()
            .iter()
            .any(|r| r.path.contains("/oauth/token")),
        "a refresh happened"
    );
}

#[tokio::test]
async fn a_lock_in_berlin_gets_berlin_wall_clock_time_with_the_lead_across_midnight() {
    let system = TestSystem::start_with(
        SimConfig::default(),
        &[("provisioner.lead_time", "30m".to_owned())],
    )
    .await;
    system.authorize().await;
    system.catalogue().await;
    let berlin_lock = system
        .sim
        .seed()
        .locks
        .iter()
        .find(|l| l.name == "Reading Room B1")
        .expect("seeded")
        .id
        .clone();
    assert_eq!(
        system.link("sp-102", &berlin_lock).await.0,
        StatusCode::CREATED
    );
    let patron = unique_patron();
    // 00:10–01:00 on 2027-03-28 in Berlin (CET, UTC+1); the clocks go forward at 02:00 that night.
    let mut body = booking(
        "confirmed",
        "2027-03-27T23:10:00Z",
        "2027-03-28T00:00:00Z",
        &patron,
    );
    body["space_id"] = json!("sp-102");
    system.put("/v1/bookings/e2e-berlin", &body).await;
    system.wait_for_pin("e2e-berlin", "issued", WAIT).await;
    let guest = &system.guests_for("e2e-berlin")[0];
    assert_eq!(
        guest.starts_at,
        local("2027-03-27T23:40:00"),
        "lead time crosses midnight"
    );
    assert_eq!(guest.ends_at, local("2027-03-28T01:05:00"));
}

#[tokio::test]
async fn cancelling_deactivates_the_guest_and_a_moved_booking_keeps_its_pin() {
    let (system, patron, first) = issued_booking("e2e-life").await;

    let moved = moved_to("sp-101", 2, &patron);
    // The first email must be out before the change: one still waiting would be dropped as
    // superseded, and rightly so.
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    system.put("/v1/bookings/e2e-life", &moved).await;
    let emails = system.mailbox.wait_for(&patron, 2, WAIT).await;
    let guest = &system.guests_for("e2e-life")[0];
    assert_eq!(guest.starts_at, local("2027-01-12T15:45:00"));
    assert_eq!(
        guest.pin.as_deref(),
        first["pin"]["pin"].as_str(),
        "same PIN after a change"
    );
    assert!(
        emails
            .iter()
            .all(|e| e.text.contains(guest.pin.as_deref().unwrap()))
    );

    let response = system
        .intake_api()
        .request(reqwest::Method::DELETE, "/v1/bookings/e2e-life")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    system.wait_for_pin("e2e-life", "revoked", WAIT).await;
    assert_eq!(
        system.guests_for("e2e-life")[0].status,
        PersonStatus::Deactivated
    );
    assert_eq!(system.guests_for("e2e-life").len(), 1);
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_pin_and_says_why() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let mut failures = lockbridge_e2e::tap::Tap::on(&system.broker.url, "lockbridge.pins").await;
    system
        .sim
        .inject(Fault::new("/access_persons", FaultKind::Status(422)).on(Method::POST));
    let patron = unique_patron();
    book(&system, "e2e-refused", &patron).await;
    system.wait_for_pin("e2e-refused", "failed", WAIT).await;
    let event = failures.next_json(WAIT).await;
    assert_eq!(event["event_type"], "pin.failed");
    assert_eq!(event["data"]["booking_id"], "e2e-refused");
    assert!(
        event["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("422")),
        "{event}"
    );
    let creates = system
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.contains("/access_persons"))
        .count();
    assert_eq!(creates, 1, "a permanent refusal is not retried");
    let history: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM pin_history WHERE booking_id = 'e2e-refused'")
            .fetch_all(&system.db.pool)
            .await
            .unwrap();
    assert!(
        history.iter().any(|d| d.contains("422")),
        "the reason is kept for staff: {history:?}"
    );
    assert!(system.mailbox.to(&patron).await.is_empty());
    system.wait_for_outbox_drained(WAIT).await;
}

fn moved_to(space: &str, revision: i64, email: &str) -> Value {
    let mut body = booking(
        "confirmed",
        "2027-01-12T16:00:00-05:00",
        "2027-01-12T17:00:00-05:00",
        email,
    );
    body["space_id"] = json!(space);
    body["revision"] = json!(revision);
    body
}

#[tokio::test]
async fn a_booking_moved_to_another_linked_room_follows_it_with_the_same_pin() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let second_lock = system.sim.seed().locks[1].id.clone();
    assert_eq!(
        system.link("sp-102", &second_lock).await.0,
        StatusCode::CREATED
    );
    let patron = unique_patron();
    book(&system, "e2e-room", &patron).await;
    let first = system.wait_for_pin("e2e-room", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    system
        .put("/v1/bookings/e2e-room", &moved_to("sp-102", 2, &patron))
        .await;
    system.mailbox.wait_for(&patron, 2, WAIT).await;
    let guests = system.guests_for("e2e-room");
    assert_eq!(guests.len(), 1, "the same guest follows the booking");
    assert_eq!(guests[0].pin.as_deref(), first["pin"]["pin"].as_str());
    let grants: Vec<_> = system
        .sim
        .accesses()
        .into_iter()
        .filter(|a| a.access_person_id == guests[0].id)
        .map(|a| a.accessible_id)
        .collect();
    assert_eq!(
        grants,
        vec![second_lock],
        "only the new room's lock opens for it"
    );
}

#[tokio::test]
async fn a_booking_moved_to_a_room_without_a_lock_loses_the_old_door() {
    let (system, patron, _) = issued_booking("e2e-unlock").await;
    system
        .put("/v1/bookings/e2e-unlock", &moved_to("sp-102", 2, &patron))
        .await;
    system.wait_for_pin("e2e-unlock", "revoked", WAIT).await;
    assert_eq!(
        system.guests_for("e2e-unlock")[0].status,
        PersonStatus::Deactivated
    );
}

#[tokio::test]
async fn a_guest_left_behind_by_a_failed_change_is_still_deactivated_on_cancel() {
    let (system, patron, _) = issued_booking("e2e-left").await;
    // RemoteLock refuses the window change for good: the PIN record ends up failed …
    system
        .sim
        .inject(Fault::new("/access_persons", FaultKind::Status(422)).on(Method::PUT));
    let moved = moved_to("sp-101", 2, &patron);
    system.put("/v1/bookings/e2e-left", &moved).await;
    system.wait_for_pin("e2e-left", "failed", WAIT).await;
    // … and its guest, still able to open the door, must go when the booking is cancelled.
    let response = system
        .http
        .delete(system.intake.url("/v1/bookings/e2e-left"))
        .bearer_auth(lockbridge_e2e::system::INTAKE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    system.wait_for_pin("e2e-left", "revoked", WAIT).await;
    let guests = system.guests_for("e2e-left");
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].status, PersonStatus::Deactivated);
}

#[tokio::test]
async fn bookings_that_failed_for_want_of_authorization_get_their_pin_after_reauthorizing() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    system.revoke_authorization_at_remotelock().await;
    let patron = unique_patron();
    book(&system, "e2e-reauth", &patron).await;
    let failed = system.wait_for_pin("e2e-reauth", "failed", WAIT).await;
    assert!(system.guests_for("e2e-reauth").is_empty(), "{failed}");
    // One failure for the account, not one per booking it stops.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind::text FROM failures WHERE resolved_at IS NULL ORDER BY id")
            .fetch_all(&system.db.pool)
            .await
            .unwrap();
    assert_eq!(kinds, ["authorization"]);

    system.authorize().await;
    system.wait_for_pin("e2e-reauth", "issued", WAIT).await;
    assert_eq!(system.guests_for("e2e-reauth").len(), 1);
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM failures WHERE resolved_at IS NULL")
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
    assert_eq!(open, 0, "authorizing again resolves it");
}

/// A grant that fails after the guest was made is retried with that guest: one create, no
/// search of RemoteLock's guests for it, one guest, one email.
#[tokio::test]
async fn a_failed_grant_is_retried_on_the_guest_already_made() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    // The trailing slash: the grant (POST /access_persons/{id}/accesses), not the create.
    system
        .sim
        .inject(Fault::new("/access_persons/", FaultKind::Status(503)).on(Method::POST));
    let patron = unique_patron();
    book(&system, "e2e-grant", &patron).await;
    system
        .wait_for_pin("e2e-grant", "issued", Duration::from_secs(60))
        .await;
    assert_eq!(system.guests_for("e2e-grant").len(), 1);
    let requests = system.sim.requests();
    let count = |method: Method, tail: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(tail))
            .count()
    };
    assert_eq!(count(Method::POST, "/access_persons"), 1, "one create");
    assert_eq!(count(Method::POST, "/accesses"), 2, "the grant, again");
    assert_eq!(
        count(Method::GET, "/access_persons"),
        0,
        "no search for the guest"
    );
    system.mailbox.wait_for(&patron, 1, WAIT).await;
}
