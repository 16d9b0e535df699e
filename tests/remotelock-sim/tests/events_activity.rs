//! What happens at the door and to the locks (remotelock-api.md §3.4, §3.8): the keypad's
//! `unlocked` / `access_person_used` / `access_denied` events, the health controls'
//! `connectivity` / `power_level_low` / `battery_replaced`, offline locks holding events and
//! syncs, `fail_next_sync`, the upload lag, and reading `GET /events` by `created_at`.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Api, body, id};
use remotelock_sim::{Bolt, DeniedPinEvents, EventKind, EventSource, EventStatus, SimConfig};
use reqwest::Method;
use serde_json::{Value, json};

/// A guest whose window is on now in New York (the seeded Riverside locks' zone).
fn current_guest(name: &str, pin: &str) -> Value {
    let local = Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .naive_local();
    let format = |at: chrono::NaiveDateTime| at.format("%Y-%m-%dT%H:%M:%S").to_string();
    json!({
        "name": name,
        "pin": pin,
        "starts_at": format(local - chrono::Duration::hours(1)),
        "ends_at": format(local + chrono::Duration::hours(1)),
    })
}

impl Api {
    /// A guest created with `attributes` and granted `lock_id`; returns its `data`.
    async fn granted(&self, attributes: Value, lock_id: &str) -> Value {
        let created = self.create_guest(attributes).await;
        assert_eq!(created.status(), 201);
        let guest = body(created).await["data"].clone();
        assert_eq!(self.grant_lock(&guest, lock_id).await.status(), 201);
        guest
    }

    /// `POST /_sim/locks/:id/pin`; answers status and body.
    async fn type_pin(&self, lock_id: &str, pin: &str) -> (u16, Value) {
        let path = format!("/_sim/locks/{lock_id}/pin");
        let response = self.control(Method::POST, &path, json!({"pin": pin})).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn device(&self, lock_id: &str) -> Value {
        body(self.get(&format!("/devices/{lock_id}")).await).await["data"]["attributes"].clone()
    }

    /// The resource types of `GET /events`, oldest recorded first.
    async fn recorded_types(&self) -> Vec<String> {
        let page = self.events("?sort=created_at").await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn kinds(api: &Api) -> Vec<EventKind> {
    api.sim.events().into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn a_synced_guest_in_its_window_opens_the_lock_with_its_pin() {
    let api = Api::start().await;
    let lock = api.sim.seed().locks[0].clone();
    let guest = api.granted(current_guest("Ada", "4821"), &lock.id).await;
    assert_eq!(api.device(&lock.id).await["state"], "locked");

    let (status, answer) = api.type_pin(&lock.id, "4821").await;
    assert_eq!(status, 200);
    assert_eq!(answer["opened"], true);
    assert_eq!(answer["person_id"], id(&guest));
    assert_eq!(api.device(&lock.id).await["state"], "unlocked");
    assert_eq!(api.sim.lock_state(&lock.id).state, Bolt::Unlocked);

    let newest = api.events("?sort=-created_at&per_page=2").await;
    let [used, unlocked] = [&newest["data"][0], &newest["data"][1]];
    assert_eq!(unlocked["type"], "unlocked_event");
    assert_eq!(unlocked["id"], answer["event_ids"][0]);
    let attributes = &unlocked["attributes"];
    assert_eq!(attributes["status"], "succeeded");
    assert_eq!(attributes["source"], "device");
    assert_eq!(attributes["method"], "pin");
    assert_eq!(attributes["pin"], "4821");
    assert_eq!(attributes["time_zone"], "America/New_York");
    assert_eq!(attributes["publisher_type"], "lock");
    assert_eq!(attributes["publisher_id"], lock.id.as_str());
    assert_eq!(attributes["associated_resource_type"], "access_guest");
    assert_eq!(attributes["associated_resource_id"], id(&guest));
    assert_eq!(attributes["associated_resource_name"], "Ada");

    // The use is the person's: published by the guest, about the lock.
    assert_eq!(used["type"], "access_person_used_event");
    let attributes = &used["attributes"];
    assert_eq!(attributes["status"], "succeeded");
    assert_eq!(attributes["publisher_type"], "access_guest");
    assert_eq!(attributes["publisher_id"], id(&guest));
    assert_eq!(attributes["associated_resource_type"], "lock");
    assert_eq!(attributes["associated_resource_id"], lock.id.as_str());
    assert_eq!(attributes["associated_resource_name"], lock.name.as_str());
    assert!(
        used["links"]["publisher"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/access_persons/{}", id(&guest)))
    );
    for name in ["occurred_at", "created_at"] {
        let at = attributes[name].as_str().unwrap();
        assert!(at.len() == 20 && at.ends_with('Z'), "{name}: {at}");
    }
    let filtered = api
        .events(&format!(
            "?attributes[publisher_id]={}&type[]=access_person_used_event",
            id(&guest)
        ))
        .await;
    assert_eq!(filtered["meta"]["total_count"], 1);
}

#[tokio::test]
async fn a_refused_pin_publishes_what_the_lock_can_know() {
    let api = Api::start().await; // denied_pin_events: UsedFailed
    let lock = api.sim.seed().locks[0].id.clone();
    // Synced but not yet in its window: the lock knows whose PIN it is.
    let upcoming = api
        .granted(common::guest_attributes("Bo", "6093"), &lock)
        .await;
    let before = api.sim.events().len();

    let (status, answer) = api.type_pin(&lock, "6093").await;
    assert_eq!((status, &answer["opened"]), (200, &json!(false)));
    assert_eq!(answer["person_id"], id(&upcoming));
    let refused = api.sim.events().pop().unwrap();
    assert_eq!(
        (refused.kind, refused.status),
        (EventKind::AccessPersonUsed, EventStatus::Failed)
    );
    assert_eq!(refused.person_name(), "Bo");
    let shown = body(api.get(&format!("/events/{}", refused.id)).await).await;
    assert_eq!(
        shown["data"]["attributes"]["publisher_type"],
        "access_guest"
    );

    // A PIN no one holds on this lock: only `access_denied`, about nobody.
    let (_, answer) = api.type_pin(&lock, "7140").await;
    assert_eq!(answer["person_id"], Value::Null);
    let denied = api.events("?type[]=access_denied_event").await;
    assert_eq!(denied["meta"]["total_count"], 1);
    let attributes = &denied["data"][0]["attributes"];
    assert_eq!(attributes["status"], "failed");
    assert_eq!(attributes["publisher_id"], lock.as_str());
    assert_eq!(attributes["associated_resource_id"], Value::Null);
    assert_eq!(attributes["pin"], "7140");
    assert_eq!(api.sim.lock_state(&lock).state, Bolt::Locked);
    assert_eq!(api.sim.events().len(), before + 2);

    // Deactivation removes the PIN from the lock; a current guest of another lock is a
    // stranger here.
    let current = api.granted(current_guest("Cy", "5190"), &lock).await;
    assert_eq!(api.deactivate(id(&current)).await.status(), 200);
    let elsewhere_lock = api.sim.seed().locks[1].id.clone();
    api.granted(current_guest("Di", "3857"), &elsewhere_lock)
        .await;
    for pin in ["5190", "3857"] {
        let (_, answer) = api.type_pin(&lock, pin).await;
        assert_eq!(answer["opened"], false, "{pin}");
        assert_eq!(answer["person_id"], Value::Null, "{pin}");
        assert_eq!(kinds(&api).pop(), Some(EventKind::AccessDenied), "{pin}");
    }

    // Bad input changes nothing.
    let count = api.sim.events().len();
    assert_eq!(api.type_pin(&lock, "12a4").await.0, 400);
    assert_eq!(api.type_pin(&lock, "").await.0, 400);
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(api.type_pin(unknown, "6093").await.0, 404);
    assert_eq!(api.sim.events().len(), count);
}

#[tokio::test]
async fn denied_pin_events_chooses_between_the_plausible_answers() {
    for (choice, expected) in [
        (
            DeniedPinEvents::Both,
            vec![EventKind::AccessPersonUsed, EventKind::AccessDenied],
        ),
        (DeniedPinEvents::AccessDenied, vec![EventKind::AccessDenied]),
    ] {
        let api = Api::start_with(SimConfig {
            denied_pin_events: choice,
            ..SimConfig::default()
        })
        .await;
        let lock = api.sim.seed().locks[0].id.clone();
        let guest = api
            .granted(common::guest_attributes("Bo", "6093"), &lock)
            .await;
        let before = api.sim.events().len();
        let answer = api.sim.enter_pin(&lock, "6093");
        assert!(!answer.opened);
        let events = api.sim.events().split_off(before);
        assert_eq!(
            events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            expected,
            "{choice:?}"
        );
        // The lock knows whose PIN it was: every event says so.
        for event in &events {
            assert_eq!(event.person.as_ref().unwrap().id.to_string(), id(&guest));
            assert_eq!(event.status, EventStatus::Failed);
        }
    }
}

#[tokio::test]
async fn a_pin_the_lock_has_not_synced_does_not_open_it() {
    let api = Api::start().await;
    let lock = api.sim.seed().locks[0].id.clone();
    api.sim.fail_next_sync(&lock, None, "timeout");
    let guest = api.granted(current_guest("Ada", "4821"), &lock).await;
    let failed = api.sim.events().pop().unwrap();
    assert_eq!(failed.kind, EventKind::AccessPersonSyncFailed);
    assert_eq!(failed.status_info.as_deref(), Some("timeout"));

    let answer = api.sim.enter_pin(&lock, "4821");
    assert!(!answer.opened);
    assert_eq!(kinds(&api).pop(), Some(EventKind::AccessDenied));

    // A PIN change syncs it again; then it opens.
    let path = format!("/access_persons/{}", id(&guest));
    let changed = api
        .send_json(Method::PUT, &path, json!({"attributes": {"pin": "5307"}}))
        .await;
    assert_eq!(changed.status(), 200);
    assert!(api.sim.enter_pin(&lock, "5307").opened);
}

#[tokio::test]
async fn fail_next_sync_fails_the_next_matching_sync_with_its_reason() {
    let api = Api::start().await;
    let lock = api.sim.seed().locks[0].id.clone();
    let first = api.guest("First", "4821").await;
    let second = api.guest("Second", "6093").await;
    let path = format!("/_sim/locks/{lock}/fail_next_sync");
    let queued = api
        .control(
            Method::POST,
            &path,
            json!({"person_id": id(&second), "status_info": "pin_conflict"}),
        )
        .await;
    assert_eq!(queued.status(), 204);

    // Only the named person's sync fails, once.
    assert_eq!(api.grant_lock(&first, &lock).await.status(), 201);
    let granted = api.grant_lock(&second, &lock).await;
    let counts = body(granted).await["data"]["attributes"].clone();
    assert_eq!(counts["devices_failed_sync_count"], 1);
    let outcomes: Vec<(String, EventKind, Option<String>)> = api
        .sim
        .events()
        .into_iter()
        .map(|e| (e.person_name().to_owned(), e.kind, e.status_info))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("First".to_owned(), EventKind::AccessPersonSynced, None),
            (
                "Second".to_owned(),
                EventKind::AccessPersonSyncFailed,
                Some("pin_conflict".to_owned())
            ),
        ]
    );
    let path_of = |person: &Value| format!("/access_persons/{}", id(person));
    api.send_json(
        Method::PUT,
        &path_of(&second),
        json!({"attributes": {"pin": "7140"}}),
    )
    .await;
    assert_eq!(kinds(&api).pop(), Some(EventKind::AccessPersonSynced));

    // Refusals: unknown lock or person, no reason.
    let unknown = "00000000-0000-4000-8000-000000000000";
    for (path, body) in [
        (
            format!("/_sim/locks/{unknown}/fail_next_sync"),
            json!({"status_info": "timeout"}),
        ),
        (
            path.clone(),
            json!({"person_id": unknown, "status_info": "timeout"}),
        ),
    ] {
        assert_eq!(api.control(Method::POST, &path, body).await.status(), 404);
    }
    let blank = api
        .control(Method::POST, &path, json!({"status_info": " "}))
        .await;
    assert_eq!(blank.status(), 400);
    // None of them queued anything: the next sync succeeds.
    let third = api.guest("Third", "3857").await;
    api.grant_lock(&third, &lock).await;
    assert_eq!(kinds(&api).pop(), Some(EventKind::AccessPersonSynced));
}

#[tokio::test]
async fn battery_reports_change_devices_and_publish_low_and_replaced() {
    let api = Api::start().await;
    let lock = api.sim.seed().locks[1].id.clone(); // 54 %
    let path = format!("/_sim/locks/{lock}/power");
    let report = |level: Value| api.control(Method::PUT, &path, json!({"power_level": level}));

    let answer = body(report(json!(40)).await).await;
    assert_eq!(answer["event_ids"], json!([]), "not low: nothing to say");
    assert_eq!(api.device(&lock).await["power_level"], 40);

    let answer = body(report(json!(15)).await).await;
    let low = api.events("?type[]=power_level_low_event").await;
    assert_eq!(low["meta"]["total_count"], 1);
    assert_eq!(low["data"][0]["id"], answer["event_ids"][0]);
    let attributes = &low["data"][0]["attributes"];
    assert_eq!(attributes["power_level"], 15);
    assert_eq!(attributes["publisher_type"], "lock");
    assert_eq!(attributes["publisher_id"], lock.as_str());
    assert_eq!(attributes["associated_resource_id"], Value::Null);
    assert_eq!(attributes["source"], "device");
    assert_eq!(api.device(&lock).await["power_level"], 15);

    // Each low report says so; a low battery back at 100 was replaced.
    report(json!(9)).await;
    let answer = body(report(json!(100)).await).await;
    assert_eq!(answer["event_ids"].as_array().unwrap().len(), 1);
    assert_eq!(
        kinds(&api),
        [
            EventKind::PowerLevelLow,
            EventKind::PowerLevelLow,
            EventKind::BatteryReplaced
        ]
    );
    assert_eq!(api.sim.events()[1].power_level, Some(9));
    // From a good level, 100 is no replacement.
    assert!(api.sim.set_power_level(&lock, 100).is_empty());

    // Refused: beyond 100, not a number, an unknown lock. Nothing changes.
    assert_eq!(report(json!(101)).await.status(), 400);
    assert!(report(json!("low")).await.status().is_client_error());
    let unknown = "/_sim/locks/00000000-0000-4000-8000-000000000000/power";
    let response = api
        .control(Method::PUT, unknown, json!({"power_level": 10}))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(api.device(&lock).await["power_level"], 100);
    assert_eq!(api.sim.events().len(), 3);
}

#[tokio::test]
async fn an_offline_lock_holds_its_events_and_syncs_until_it_reconnects() {
    let api = Api::start().await;
    let lock = api.sim.seed().locks[0].id.clone();
    let resident = api.granted(current_guest("Ada", "4821"), &lock).await;
    let path = format!("/_sim/locks/{lock}/connectivity");
    let went = api
        .control(Method::PUT, &path, json!({"connected": false}))
        .await;
    assert_eq!(went.status(), 200);
    let went = body(went).await;
    let device = api.device(&lock).await;
    assert_eq!(
        (device["connected"].clone(), device["alive"].clone()),
        (json!(false), json!(false))
    );
    let lost = api.events("?type[]=connectivity_event").await;
    assert_eq!(lost["data"][0]["id"], went["event_id"]);
    let attributes = &lost["data"][0]["attributes"];
    assert_eq!(attributes["status"], "failed");
    assert_eq!(attributes["source"], "network");
    assert_eq!(attributes["connected_at"], device["connected_at"]);
    // Saying it again changes nothing.
    let again = api
        .control(Method::PUT, &path, json!({"connected": false}))
        .await;
    assert_eq!(body(again).await["event_id"], Value::Null);

    // The keypad still works from what the lock holds, but nobody hears of it yet; a new
    // guest's code waits for the lock.
    let recorded = api.recorded_types().await;
    assert!(api.sim.enter_pin(&lock, "4821").opened);
    let late = api.granted(current_guest("Bo", "6093"), &lock).await;
    assert_eq!(api.recorded_types().await, recorded);
    assert_eq!(api.sim.lock_state(&lock).held_events, 2);
    let path_of_late = format!("/access_persons/{}/accesses", id(&late));
    let access = body(api.get(&path_of_late).await).await;
    assert_eq!(
        access["data"][0]["attributes"]["devices_pending_sync_count"],
        1
    );
    assert!(
        !api.sim.enter_pin(&lock, "6093").opened,
        "not on the lock yet"
    );

    let reconnected = Utc::now();
    let back = api.sim.set_connected(&lock, true).expect("it changed");
    let events = api.sim.events();
    let since: Vec<(EventKind, EventStatus, String)> = events
        .iter()
        .skip_while(|e| e.id != back)
        .map(|e| (e.kind, e.status, e.person_name().to_owned()))
        .collect();
    assert_eq!(
        since,
        [
            (
                EventKind::Connectivity,
                EventStatus::Succeeded,
                String::new()
            ),
            (
                EventKind::Unlocked,
                EventStatus::Succeeded,
                "Ada".to_owned()
            ),
            (
                EventKind::AccessPersonUsed,
                EventStatus::Succeeded,
                "Ada".to_owned()
            ),
            (EventKind::AccessDenied, EventStatus::Failed, "".to_owned()),
            (
                EventKind::AccessPersonSynced,
                EventStatus::Succeeded,
                "Bo".to_owned()
            ),
        ]
    );
    let connectivity = events.iter().find(|e| e.id == back).unwrap();
    assert_eq!(connectivity.source, EventSource::Network);
    assert!(connectivity.connected_at.unwrap() >= reconnected - chrono::Duration::seconds(1));
    // What the lock held happened before it was uploaded.
    let unlocked = events
        .iter()
        .find(|e| e.kind == EventKind::Unlocked)
        .unwrap();
    assert!(unlocked.occurred_at < reconnected && unlocked.created_at >= reconnected);
    assert_eq!(
        unlocked.person.as_ref().unwrap().id.to_string(),
        id(&resident)
    );
    assert_eq!(api.sim.lock_state(&lock).held_events, 0);
    assert!(api.device(&lock).await["connected"].as_bool().unwrap());
    assert!(
        api.sim.enter_pin(&lock, "6093").opened,
        "synced on reconnect"
    );

    let unknown = "/_sim/locks/00000000-0000-4000-8000-000000000000/connectivity";
    let response = api
        .control(Method::PUT, unknown, json!({"connected": true}))
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn created_at_lags_occurred_at_by_the_upload_lag() {
    let api = Api::start_with(SimConfig {
        event_upload_lag: Duration::from_millis(400),
        ..SimConfig::default()
    })
    .await;
    let lock = api.sim.seed().locks[0].id.clone();
    let ids = api.sim.set_power_level(&lock, 10);
    assert!(api.sim.events().is_empty(), "still on its way");
    let missing = api.get(&format!("/events/{}", ids[0])).await;
    assert_eq!(missing.status(), 404);

    tokio::time::sleep(Duration::from_millis(700)).await;
    let event = api.sim.events().pop().expect("uploaded");
    assert_eq!(event.id, ids[0]);
    let lag = event.created_at - event.occurred_at;
    assert!(lag >= chrono::Duration::milliseconds(400), "{lag}");
    let shown = body(api.get(&format!("/events/{}", ids[0])).await).await;
    let attributes = &shown["data"]["attributes"];
    let parse = |name: &str| {
        chrono::DateTime::parse_from_rfc3339(attributes[name].as_str().unwrap()).unwrap()
    };
    assert!(parse("created_at") >= parse("occurred_at"));
}

/// Recovery after missed webhooks re-reads `/events` by `created_at` (remotelock-api.md
/// §3.9): an event a lock uploads late occurred before events recorded earlier, so only
/// `created_at` finds it after a cursor.
#[tokio::test]
async fn sorting_by_created_at_finds_late_uploads_that_occurred_sort_hides() {
    let api = Api::start().await;
    let seed = api.sim.seed();
    let (offline, online) = (&seed.locks[1].id, &seed.locks[2].id);
    api.sim.set_connected(offline, false);
    let held = api.sim.enter_pin(offline, "7140").event_ids[0].clone();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cursor = api.sim.set_power_level(online, 11)[0].clone(); // seen by a poller
    tokio::time::sleep(Duration::from_millis(20)).await;
    let back = api.sim.set_connected(offline, true).unwrap();

    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_created = ids(&api.events("?sort=-created_at").await);
    let after_cursor: Vec<&String> = by_created.iter().take_while(|id| **id != cursor).collect();
    assert_eq!(after_cursor, [&held, &back], "newest created first");

    let by_occurred = ids(&api.events("").await); // default: -occurred_at
    let after_cursor: Vec<&String> = by_occurred.iter().take_while(|id| **id != cursor).collect();
    assert_eq!(
        after_cursor,
        [&back],
        "the late upload sorts before the cursor"
    );
    assert_eq!(ids(&api.events("?sort=occurred_at").await)[1], held);
    assert_eq!(
        ids(&api.events("?sort[]=created_at").await).last(),
        Some(&held)
    );
}
