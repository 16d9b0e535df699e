//! Locks syncing PINs after the API call succeeded (remotelock-api.md §3.5, §3.6) and the
//! events they publish (§3.8): `GET /events[/:id]`, `PinUniqueness::DeviceAtSync`, sync
//! counters, door truth and the sync controls.

mod common;

use std::time::Duration;

use common::{Api, body, id};
use remotelock_sim::{EventKind, EventStatus, PinUniqueness, SimConfig};
use reqwest::{Method, Response};
use serde_json::{Value, json};

const SYNCED: &str = "access_person_synced_event";
const FAILED: &str = "access_person_sync_failed_event";

fn at_sync() -> SimConfig {
    SimConfig {
        pin_uniqueness: PinUniqueness::DeviceAtSync,
        ..SimConfig::default()
    }
}

impl Api {
    async fn set_pin(&self, guest: &Value, pin: &str) -> Response {
        let path = format!("/access_persons/{}", id(guest));
        self.send_json(Method::PUT, &path, json!({"attributes": {"pin": pin}}))
            .await
    }

    fn live_names(&self, lock_id: &str) -> Vec<String> {
        self.sim
            .live_guests_on_lock(lock_id)
            .into_iter()
            .map(|g| g.name)
            .collect()
    }
}

fn types(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

fn names(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["attributes"]["associated_resource_name"]
                .as_str()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_second_guest_with_the_same_pin_fails_to_sync_until_its_pin_changes() {
    let api = Api::start_with(at_sync()).await;
    let locks = api.sim.seed().locks;
    let (room, other_room) = (&locks[0].id, &locks[1].id);
    let first = api.guest("First", "4821").await;
    let second = api.guest("Second", "4821").await; // never refused at create
    let elsewhere = api.guest("Elsewhere", "4821").await;

    assert_eq!(api.grant_lock(&first, room).await.status(), 201);
    // The grant itself succeeds; the lock reports the clash afterwards.
    let granted = api.grant_lock(&second, room).await;
    assert_eq!(granted.status(), 201);
    let access = body(granted).await["data"]["attributes"].clone();
    assert_eq!(access["devices_count"], 1);
    assert_eq!(access["devices_synced_count"], 0);
    assert_eq!(access["devices_failed_sync_count"], 1);
    assert_eq!(access["devices_pending_sync_count"], 0);
    // Another lock has no holder of the PIN.
    assert_eq!(api.grant_lock(&elsewhere, other_room).await.status(), 201);

    let events = api.sim.events();
    let outcomes: Vec<(&str, EventKind, Option<&str>)> = events
        .iter()
        .map(|e| (e.person_name(), e.kind, e.status_info.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("First", EventKind::AccessPersonSynced, None),
            (
                "Second",
                EventKind::AccessPersonSyncFailed,
                Some("pin_conflict")
            ),
            ("Elsewhere", EventKind::AccessPersonSynced, None),
        ]
    );
    assert_eq!(events[1].lock_id, *room);
    let person = events[1].person.as_ref().unwrap();
    assert_eq!(person.id.to_string(), id(&second));
    assert_eq!(events[1].status, EventStatus::Failed);
    assert_eq!(api.live_names(room), ["First"]);
    assert_eq!(api.live_names(other_room), ["Elsewhere"]);

    let failed = api.events(&format!("?type[]={FAILED}")).await;
    let event = &failed["data"][0];
    assert_eq!(failed["meta"]["total_count"], 1);
    assert_eq!(event["id"], events[1].id.as_str());
    assert_eq!(event["attributes"]["status"], "failed");
    assert_eq!(event["attributes"]["status_info"], "pin_conflict");
    assert_eq!(event["attributes"]["publisher_id"], room.as_str());
    assert_eq!(event["attributes"]["associated_resource_id"], id(&second));

    // A fresh PIN syncs again and opens the door.
    let changed = api.set_pin(&second, "6093").await;
    assert_eq!(changed.status(), 200);
    let last = api.sim.events().pop().unwrap();
    assert_eq!(
        (last.kind, last.person_name(), last.lock_id.as_str()),
        (EventKind::AccessPersonSynced, "Second", room.as_str())
    );
    assert_eq!(api.live_names(room), ["First", "Second"]);
    let path = format!("/access_persons/{}/accesses", id(&second));
    let accesses = body(api.get(&path).await).await;
    assert_eq!(accesses["data"][0]["attributes"]["devices_synced_count"], 1);
    assert_eq!(
        accesses["data"][0]["attributes"]["devices_failed_sync_count"],
        0
    );

    // Changing the first guest's PIN to the one now on the lock clashes the other way.
    assert_eq!(api.set_pin(&first, "6093").await.status(), 200);
    let last = api.sim.events().pop().unwrap();
    assert_eq!(
        (last.kind, last.person_name()),
        (EventKind::AccessPersonSyncFailed, "First")
    );
    assert_eq!(api.live_names(room), ["Second"]);
}

#[tokio::test]
async fn clashes_show_through_locations_and_only_against_pins_on_the_lock() {
    let api = Api::start_with(at_sync()).await;
    let seed = api.sim.seed();
    let room = &seed.locks[0].id;
    let holder = api.guest("Holder", "5190").await;
    let location = json!({"attributes": {"accessible_type": "location", "accessible_id": seed.locations[0].id}});
    let path = format!("/access_persons/{}/accesses", id(&holder));
    let granted = api.send_json(Method::POST, &path, location).await;
    let counts = body(granted).await["data"]["attributes"].clone();
    assert_eq!(
        (
            counts["devices_count"].clone(),
            counts["devices_synced_count"].clone()
        ),
        (json!(3), json!(3))
    );

    let late = api.guest("Late", "5190").await;
    assert_eq!(api.grant_lock(&late, room).await.status(), 201);
    // The late guest holds the PIN but failed on the lock, so a third one is not blocked by it.
    let holder_leaves = api.deactivate(id(&holder)).await;
    assert_eq!(holder_leaves.status(), 200);
    let third = api.guest("Third", "5190").await;
    assert_eq!(api.grant_lock(&third, room).await.status(), 201);
    let events = api.sim.events();
    let last: Vec<(&str, EventStatus)> = events
        .iter()
        .skip(3)
        .map(|e| (e.person_name(), e.status))
        .collect();
    assert_eq!(
        last,
        [
            ("Late", EventStatus::Failed),
            ("Third", EventStatus::Succeeded)
        ]
    );
    assert_eq!(api.live_names(room), ["Third"]);

    // The offline lock never wakes up: pending, no event, still counted as reaching it.
    let offline = &seed.locks[3].id;
    let granted = api.grant_lock(&third, offline).await;
    let counts = body(granted).await["data"]["attributes"].clone();
    assert_eq!(counts["devices_pending_sync_count"], 1);
    assert_eq!(api.sim.events().len(), events.len());
    assert_eq!(api.live_names(offline), ["Third"]);
}

#[tokio::test]
async fn events_list_sorts_filters_pages_and_shows() {
    let api = Api::start().await; // syncs are reported whatever the PIN scope
    let seed = api.sim.seed();
    let lock = &seed.locks[0].id;
    for (name, pin) in [("Ada", "4821"), ("Bo", "6093"), ("Cy", "7140")] {
        let guest = api.guest(name, pin).await;
        assert_eq!(api.grant_lock(&guest, lock).await.status(), 201);
    }
    let bo = api.sim.guests()[1].id.clone();
    let failure = api.sim.report_sync_failure(&bo, lock, "timeout");
    assert_eq!(api.live_names(lock), ["Ada", "Cy"]);

    // Default: occurred_at descending, newest first even within one second.
    let all = api.events("").await;
    assert_eq!(
        all["meta"],
        json!({"page": 1, "per_page": 25, "total_count": 4, "total_pages": 1})
    );
    assert_eq!(names(&all), ["Bo", "Cy", "Bo", "Ada"]);
    assert_eq!(types(&all), [FAILED, SYNCED, SYNCED, SYNCED]);
    let newest = &all["data"][0];
    assert_eq!(newest["id"], failure.as_str());
    let attributes = &newest["attributes"];
    assert_eq!(attributes["source"], "device");
    assert_eq!(attributes["status"], "failed");
    assert_eq!(attributes["status_info"], "timeout");
    assert_eq!(attributes["time_zone"], "America/New_York");
    assert_eq!(attributes["publisher_type"], "lock");
    assert_eq!(attributes["publisher_id"], lock.as_str());
    assert_eq!(attributes["associated_resource_type"], "access_guest");
    assert_eq!(attributes["associated_resource_id"], bo.as_str());
    assert_eq!(attributes["associated_resource_name"], "Bo");
    for name in ["occurred_at", "created_at", "updated_at"] {
        let at = attributes[name].as_str().unwrap();
        assert!(at.len() == 20 && at.ends_with('Z'), "{name}: {at}");
    }
    let synced = &all["data"][1]["attributes"];
    assert_eq!(synced["status"], "succeeded");
    assert!(synced.get("status_info").is_none());
    assert!(
        newest["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/events/{failure}"))
    );
    assert!(
        newest["links"]["publisher"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/devices/{lock}"))
    );

    for (query, expected) in [
        ("?sort=occurred_at", ["Ada", "Bo", "Cy", "Bo"]),
        ("?sort=-occurred_at", ["Bo", "Cy", "Bo", "Ada"]),
        ("?sort=created_at", ["Ada", "Bo", "Cy", "Bo"]),
        ("?sort=-created_at", ["Bo", "Cy", "Bo", "Ada"]),
    ] {
        assert_eq!(names(&api.events(query).await), expected, "{query}");
    }
    assert_eq!(api.get("/events?sort=status").await.status(), 400);

    let failed = api.events(&format!("?type[]={FAILED}")).await;
    assert_eq!(names(&failed), ["Bo"]);
    let synced = api.events(&format!("?type={SYNCED}")).await;
    assert_eq!(synced["meta"]["total_count"], 3);
    let both = api
        .events(&format!("?type[]={FAILED}&type[]={SYNCED}"))
        .await;
    assert_eq!(both["meta"]["total_count"], 4);
    let by_person = api
        .events(&format!("?attributes[associated_resource_id]={bo}"))
        .await;
    assert_eq!(types(&by_person), [FAILED, SYNCED]);

    let second_page = api.events("?per_page=3&page=2").await;
    assert_eq!(
        second_page["meta"],
        json!({"page": 2, "per_page": 3, "total_count": 4, "total_pages": 2})
    );
    assert_eq!(names(&second_page), ["Ada"]);

    let shown = api.get(&format!("/events/{failure}")).await;
    assert_eq!(shown.status(), 200);
    assert_eq!(body(shown).await["data"], *newest);
    let unversioned = api
        .http
        .get(api.url(&format!("/events/{failure}")))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(unversioned.status(), 200);
    for missing in ["00000000-0000-4000-8000-000000000000", "nope"] {
        let response = api.get(&format!("/events/{missing}")).await;
        assert_eq!(response.status(), 404);
        assert_eq!(body(response).await["type"], "not_found");
    }
    let anonymous = api.http.get(api.url("/v1/events")).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
}

#[tokio::test]
async fn sync_controls_over_http() {
    let api = Api::start_with(at_sync()).await;
    let lock = api.sim.seed().locks[0].id.clone();
    let guest = api.guest("Guest", "4821").await;
    api.grant_lock(&guest, &lock).await;
    let control = |body: Value| {
        api.http
            .post(api.url("/_sim/sync_failures"))
            .json(&body)
            .send()
    };
    let reported =
        control(json!({"person_id": id(&guest), "lock_id": lock, "status_info": "timeout"}))
            .await
            .unwrap();
    assert_eq!(reported.status(), 201);
    let event_id = body(reported).await["id"].as_str().unwrap().to_owned();
    let other_lock = api.sim.seed().locks[1].id.clone();
    let not_granted =
        control(json!({"person_id": id(&guest), "lock_id": other_lock, "status_info": "timeout"}))
            .await
            .unwrap();
    assert_eq!(not_granted.status(), 404);

    let events = api.control_get("/_sim/events").await;
    assert_eq!(events[1]["id"], event_id.as_str());
    assert_eq!(events[1]["type"], FAILED);
    assert_eq!(events[1]["status_info"], "timeout");
    assert_eq!(events[1]["lock_id"], lock.as_str());
    assert!(api.live_names(&lock).is_empty());
}

#[tokio::test]
async fn a_sync_delay_leaves_grants_pending_until_the_lock_syncs() {
    let api = Api::start_with(SimConfig {
        sync_delay: Duration::from_millis(300),
        ..at_sync()
    })
    .await;
    let lock = api.sim.seed().locks[0].id.clone();
    let first = api.guest("First", "4821").await;
    let second = api.guest("Second", "4821").await;
    let granted = api.grant_lock(&first, &lock).await;
    let counts = body(granted).await["data"]["attributes"].clone();
    assert_eq!(counts["devices_pending_sync_count"], 1);
    assert_eq!(counts["devices_synced_count"], 0);
    tokio::time::sleep(Duration::from_millis(50)).await; // the first lock sync comes first
    api.grant_lock(&second, &lock).await;
    assert!(api.sim.events().is_empty());
    assert_eq!(
        api.live_names(&lock),
        ["First", "Second"],
        "pending codes still count"
    );

    tokio::time::sleep(Duration::from_millis(900)).await;
    let outcomes: Vec<(String, EventKind)> = api
        .sim
        .events()
        .into_iter()
        .map(|e| (e.person_name().to_owned(), e.kind))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("First".to_owned(), EventKind::AccessPersonSynced),
            ("Second".to_owned(), EventKind::AccessPersonSyncFailed),
        ]
    );
    assert_eq!(api.live_names(&lock), ["First"]);
}
