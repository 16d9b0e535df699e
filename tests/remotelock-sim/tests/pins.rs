//! PIN rules the docs leave open (remotelock-api.md §3.5): uniqueness scope and when it is
//! checked, the conflict error's shape, queued refusals, guessable codes, outside holders.

mod common;

use common::{Api, body, guest_attributes};
use remotelock_sim::{PinCheck, PinConflictError, PinUniqueness, SimConfig};
use reqwest::{Method, Response};
use serde_json::{Value, json};

fn config(uniqueness: PinUniqueness) -> SimConfig {
    SimConfig {
        pin_uniqueness: uniqueness,
        ..SimConfig::default()
    }
}

fn grant_lock(lock_id: &str) -> Value {
    json!({"attributes": {"accessible_type": "lock", "accessible_id": lock_id}})
}

impl Api {
    async fn grant(&self, guest: &Value, accessible: Value) -> Response {
        let path = format!("/access_persons/{}/accesses", guest["id"].as_str().unwrap());
        self.send_json(Method::POST, &path, accessible).await
    }

    async fn set_pin(&self, guest: &Value, pin: &str) -> Response {
        let path = format!("/access_persons/{}", guest["id"].as_str().unwrap());
        self.send_json(Method::PUT, &path, json!({"attributes": {"pin": pin}}))
            .await
    }
}

async fn conflict(response: Response) -> Value {
    assert_eq!(response.status(), 422);
    body(response).await["errors"].clone()
}

fn taken() -> Value {
    json!([{"attribute": "pin", "messages": ["has already been taken"], "full_messages": ["pin has already been taken"]}])
}

#[tokio::test]
async fn device_scope_allows_shared_pins_until_they_meet_on_a_lock() {
    let api = Api::start_with(config(PinUniqueness::DeviceAtGrant)).await;
    let locks = api.sim.seed().locks;
    let first = api.guest("First", "4821").await;
    let second = api.guest("Second", "4821").await; // create never refuses
    assert_eq!(
        api.grant(&first, grant_lock(&locks[0].id)).await.status(),
        201
    );
    assert_eq!(
        api.grant(&second, grant_lock(&locks[1].id)).await.status(),
        201
    );

    let response = api.grant(&second, grant_lock(&locks[0].id)).await;
    assert_eq!(conflict(response).await, taken());
    assert_eq!(api.sim.accesses().len(), 2, "refused grant not stored");

    // Through a location: the first guest's lock belongs to Riverside Main.
    let location = json!({"attributes": {"accessible_type": "location", "accessible_id": locks[0].location_id}});
    assert_eq!(api.grant(&second, location).await.status(), 422);
    // And the other way round: a holder granted the location clashes on its locks.
    let third = api.guest("Third", "5190").await;
    let fourth = api.guest("Fourth", "5190").await;
    let location = json!({"attributes": {"accessible_type": "location", "accessible_id": locks[0].location_id}});
    assert_eq!(api.grant(&third, location).await.status(), 201);
    assert_eq!(
        api.grant(&fourth, grant_lock(&locks[2].id)).await.status(),
        422
    );
    // The offline Berlin lock is elsewhere.
    assert_eq!(
        api.grant(&fourth, grant_lock(&locks[3].id)).await.status(),
        201
    );

    // Once the holder is deactivated the lock is free for the PIN.
    assert_eq!(
        api.deactivate(first["id"].as_str().unwrap()).await.status(),
        200
    );
    assert_eq!(
        api.grant(&second, grant_lock(&locks[0].id)).await.status(),
        201
    );
}

#[tokio::test]
async fn device_scope_refuses_an_update_that_clashes_on_the_persons_locks() {
    let api = Api::start_with(config(PinUniqueness::DeviceAtGrant)).await;
    let locks = api.sim.seed().locks;
    let holder = api.guest("Holder", "4821").await;
    let mover = api.guest("Mover", "6093").await;
    api.grant(&holder, grant_lock(&locks[0].id)).await;
    api.grant(&mover, grant_lock(&locks[0].id)).await;

    assert_eq!(conflict(api.set_pin(&mover, "4821").await).await, taken());
    assert_eq!(api.set_pin(&mover, "7140").await.status(), 200);
    // A guest without accesses shares PINs freely.
    let loner = api.guest("Loner", "5190").await;
    assert_eq!(api.set_pin(&loner, "4821").await.status(), 200);
}

#[tokio::test]
async fn account_scope_is_the_default_and_ignores_grants() {
    let api = Api::start().await;
    let locks = api.sim.seed().locks;
    let first = api.guest("First", "4821").await;
    assert_eq!(
        conflict(api.create_guest(guest_attributes("Second", "4821")).await).await,
        taken()
    );
    let second = api.guest("Second", "6093").await;
    assert_eq!(conflict(api.set_pin(&second, "4821").await).await, taken());
    assert_eq!(
        api.grant(&first, grant_lock(&locks[0].id)).await.status(),
        201
    );
}

#[tokio::test]
async fn no_scope_never_refuses() {
    let api = Api::start_with(config(PinUniqueness::None)).await;
    let lock = &api.sim.seed().locks[0].id;
    let first = api.guest("First", "4821").await;
    let second = api.guest("Second", "4821").await;
    assert_eq!(api.grant(&first, grant_lock(lock)).await.status(), 201);
    assert_eq!(api.grant(&second, grant_lock(lock)).await.status(), 201);
    assert_eq!(api.sim.live_guests_on_lock(lock).len(), 2);
}

#[tokio::test]
async fn conflict_error_can_take_the_wording_seen_on_the_real_api() {
    let api = Api::start_with(SimConfig {
        pin_uniqueness: PinUniqueness::DeviceAtGrant,
        pin_conflict_error: PinConflictError::UsedOnDevice,
        ..SimConfig::default()
    })
    .await;
    let lock = &api.sim.seed().locks[0].id;
    let first = api.guest("First", "4821").await;
    let second = api.guest("Second", "4821").await;
    api.grant(&first, grant_lock(lock)).await;
    let response = api.grant(&second, grant_lock(lock)).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        body(response).await,
        json!({
            "attributes": grant_lock(lock)["attributes"],
            "errors": [{"attribute": null, "messages": ["PIN is already used on this device"], "full_messages": ["PIN is already used on this device"]}]
        })
    );
}

#[tokio::test]
async fn queued_refusals_hit_the_next_pins_at_their_stage() {
    let api = Api::start().await;
    let lock = &api.sim.seed().locks[0].id;
    api.sim.refuse_next_pins(2, PinCheck::Create);
    api.sim.refuse_next_pins(1, PinCheck::Update);
    api.sim.refuse_next_pins(1, PinCheck::Grant);

    // A badly formed PIN is refused for its format and uses up no refusal.
    let response = api.create_guest(guest_attributes("Bad", "12")).await;
    assert_ne!(conflict(response).await, taken());
    for _ in 0..2 {
        let response = api.create_guest(guest_attributes("Unlucky", "4821")).await;
        assert_eq!(conflict(response).await, taken());
    }
    let guest = api.guest("Lucky", "4821").await;

    assert_eq!(conflict(api.set_pin(&guest, "6093").await).await, taken());
    assert_eq!(api.set_pin(&guest, "6093").await.status(), 200);

    assert_eq!(
        conflict(api.grant(&guest, grant_lock(lock)).await).await,
        taken()
    );
    assert_eq!(api.grant(&guest, grant_lock(lock)).await.status(), 201);
    assert_eq!(api.sim.guests().len(), 1);
}

#[tokio::test]
async fn refusals_over_http_controls() {
    let api = Api::start().await;
    let control = |path: &str, json: Value| api.http.post(api.url(path)).json(&json).send();
    let queued = control("/_sim/pins/refuse", json!({"count": 1, "at": "create"}))
        .await
        .unwrap();
    assert_eq!(queued.status(), 204);
    let bad_stage = control("/_sim/pins/refuse", json!({"count": 1, "at": "sync"}))
        .await
        .unwrap();
    assert!(bad_stage.status().is_client_error());
    assert_eq!(
        conflict(api.create_guest(guest_attributes("A", "4821")).await).await,
        taken()
    );
    assert_eq!(
        api.create_guest(guest_attributes("A", "4821"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn guessable_pins_are_refused_unless_turned_off() {
    let api = Api::start().await;
    for simple in ["1234", "9876", "1111", "0000000"] {
        let response = api.create_guest(guest_attributes("Simple", simple)).await;
        assert_eq!(
            conflict(response).await,
            json!([{"attribute": "pin", "messages": ["is too simple"], "full_messages": ["pin is too simple"]}]),
            "{simple}"
        );
    }
    let guest = api.guest("Fine", "1235").await;
    assert_eq!(api.set_pin(&guest, "4567").await.status(), 422);

    let lenient = Api::start_with(SimConfig {
        reject_guessable_pins: false,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(
        lenient
            .create_guest(guest_attributes("Simple", "1234"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn outside_access_users_hold_pins_lockbridge_cannot_see_coming() {
    let api = Api::start_with(config(PinUniqueness::DeviceAtGrant)).await;
    let lock = api.sim.seed().locks[0].id.clone();
    let outsider = api
        .sim
        .add_access_user("Cleaning Crew", "4821", Some(&lock));
    let listed = body(api.get("/access_persons?type=access_user").await).await;
    assert_eq!(listed["data"][0]["id"], outsider.as_str());
    assert_eq!(listed["data"][0]["attributes"]["pin"], "4821");

    let guest = api.guest("Guest", "4821").await;
    assert_eq!(
        conflict(api.grant(&guest, grant_lock(&lock)).await).await,
        taken()
    );

    // Account scope: the outsider's PIN is taken account-wide, even without a lock.
    let account = Api::start().await;
    account.sim.add_access_user("Owner", "6093", None);
    let response = account
        .create_guest(guest_attributes("Guest", "6093"))
        .await;
    assert_eq!(conflict(response).await, taken());

    let over_http = api
        .http
        .post(api.url("/_sim/access_users"))
        .json(&json!({"name": "Janitor", "pin": "7140", "lock_id": lock}))
        .send()
        .await
        .unwrap();
    assert_eq!(over_http.status(), 201);
    assert!(body(over_http).await["id"].is_string());
    let unknown_lock = api
        .http
        .post(api.url("/_sim/access_users"))
        .json(&json!({"name": "Ghost", "pin": "7140", "lock_id": "00000000-0000-4000-8000-000000000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_lock.status(), 404);
}

#[tokio::test]
async fn live_guests_on_a_lock_are_the_door_truth() {
    let api = Api::start().await;
    let locks = api.sim.seed().locks;
    let direct = api.guest("Direct", "4821").await;
    let via_location = api.guest("Via Location", "6093").await;
    let deactivated = api.guest("Deactivated", "7140").await;
    let deleted = api.guest("Deleted", "5190").await;
    let elsewhere = api.guest("Elsewhere", "8362").await;
    let mut past = guest_attributes("Expired", "2957");
    past["starts_at"] = json!("2020-01-02T16:04:00");
    past["ends_at"] = json!("2020-01-03T11:00:00");
    let expired = body(api.create_guest(past).await).await["data"].clone();
    for guest in [&direct, &deactivated, &deleted, &expired] {
        assert_eq!(
            api.grant(guest, grant_lock(&locks[0].id)).await.status(),
            201
        );
    }
    let location = json!({"attributes": {"accessible_type": "location", "accessible_id": locks[0].location_id}});
    api.grant(&via_location, location).await;
    api.grant(&elsewhere, grant_lock(&locks[3].id)).await;
    api.sim.add_access_user("Staff", "3706", Some(&locks[0].id));
    api.deactivate(deactivated["id"].as_str().unwrap()).await;
    let path = format!("/access_persons/{}", deleted["id"].as_str().unwrap());
    api.request(Method::DELETE, &path).send().await.unwrap();

    let live = api.sim.live_guests_on_lock(&locks[0].id);
    let names: Vec<&str> = live.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["Direct", "Via Location"]);
    assert_eq!(live[0].pin.as_deref(), Some("4821"));
    assert!(api.sim.live_guests_on_lock(&locks[1].id)[0].name == "Via Location");

    let over_http = api
        .control_get(&format!("/_sim/locks/{}/live_guests", locks[0].id))
        .await;
    assert_eq!(over_http.as_array().unwrap().len(), 2);
}
