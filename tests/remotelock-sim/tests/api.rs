//! The REST API: authentication, envelope, pagination, guests, PINs and accesses.

mod common;

use common::{Api, body, guest_attributes};
use reqwest::Method;
use serde_json::{Value, json};

fn is_utc_second(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 20 && text.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

#[tokio::test]
async fn bad_or_missing_token_is_403_with_general_error() {
    let api = Api::start().await;
    let url = api.url("/v1/devices");
    for request in [
        api.http.get(&url),
        api.http.get(&url).bearer_auth("not-a-token"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
        let error = body(response).await;
        assert!(error["message"].is_string());
        assert_eq!(error["type"], "invalid_token");
    }
}

#[tokio::test]
async fn devices_envelope_and_paging() {
    let api = Api::start().await;
    let seed = api.sim.seed();

    let response = api.get("/devices?per_page=3").await;
    assert_eq!(response.status(), 200);
    let first = body(response).await;
    assert_eq!(
        first["meta"],
        json!({"page": 1, "per_page": 3, "total_count": 4, "total_pages": 2})
    );
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let lock = &data[0];
    assert_eq!(lock["type"], "lock");
    assert_eq!(lock["id"], seed.locks[0].id.as_str());
    assert_eq!(lock["attributes"]["name"], seed.locks[0].name.as_str());
    assert_eq!(lock["attributes"]["power_level"], 87);
    assert_eq!(
        lock["attributes"]["location_id"],
        seed.locations[0].id.as_str()
    );
    assert!(is_utc_second(&lock["attributes"]["created_at"]));
    assert!(is_utc_second(&lock["attributes"]["connected_at"]));
    let self_link = lock["links"]["self"].as_str().unwrap();
    assert!(self_link.ends_with(&format!("/devices/{}", seed.locks[0].id)));
    assert!(lock["links"]["location"].is_string());

    let second = body(api.get("/devices?per_page=3&page=2").await).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    let past_end = body(api.get("/devices?per_page=3&page=3").await).await;
    assert_eq!(past_end["data"], json!([]));
    assert_eq!(past_end["meta"]["total_count"], 4);

    let clamped = body(api.get("/devices?per_page=500").await).await;
    assert_eq!(clamped["meta"]["per_page"], 50);
    assert_eq!(api.get("/devices?page=201&per_page=50").await.status(), 400);

    // Filters and sorting.
    let berlin = &seed.locations[1].id;
    let filtered = body(
        api.get(&format!("/devices?attributes[location_id]={berlin}"))
            .await,
    )
    .await;
    let names: Vec<&str> = filtered["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Reading Room B1"]);
    assert_eq!(filtered["data"][0]["attributes"]["connected"], false);
    let sorted = body(api.get("/devices?sort=-name&type[]=lock").await).await;
    assert_eq!(sorted["data"][0]["attributes"]["name"], "Study Room 102");
    let by_id = body(
        api.get(&format!(
            "/devices?id[]={}&id[]={}",
            seed.locks[1].id, seed.locks[3].id
        ))
        .await,
    )
    .await;
    assert_eq!(by_id["meta"]["total_count"], 2);

    // Single resource and unknown ids.
    let one = body(api.get(&format!("/devices/{}", seed.locks[2].id)).await).await;
    assert_eq!(one["data"]["attributes"]["power_level"], 12);
    let missing = api
        .get("/devices/00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(body(missing).await["type"], "not_found");
}

#[tokio::test]
async fn versioning_by_path_or_accept_header() {
    let api = Api::start().await;
    let get = |path: &str, accept: Option<&str>| {
        let mut request = api.http.get(api.url(path)).bearer_auth(&api.token);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        request.send()
    };
    for accept in [
        Some("application/vnd.lockstate+json; version=1"),
        Some("application/vnd.lockstate.v1+json"),
        Some("application/vnd.remotelock.v1+json"),
        Some("application/vnd.remotelock+json; version=1"),
        Some("application/json"),
        None,
    ] {
        assert_eq!(
            get("/account", accept).await.unwrap().status(),
            200,
            "{accept:?}"
        );
    }
    let account = body(get("/v1/account", None).await.unwrap()).await;
    assert_eq!(
        account["data"]["attributes"]["name"],
        "Riverside Public Library"
    );
    assert_eq!(account["data"]["id"], api.sim.seed().account_id.as_str());
    let refused = get(
        "/account",
        Some("application/vnd.lockstate+json; version=2"),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 406);
    assert!(body(refused).await["message"].is_string());
}

#[tokio::test]
async fn user_and_locations() {
    let api = Api::start().await;
    let user = body(api.get("/user").await).await;
    assert_eq!(user["data"]["type"], "user");
    assert_eq!(
        user["data"]["attributes"]["primary_account_id"],
        api.sim.seed().account_id.as_str()
    );
    let locations = body(api.get("/locations").await).await;
    // Default sort: name ascending.
    assert_eq!(locations["data"][0]["attributes"]["name"], "Berlin Branch");
    assert_eq!(
        locations["data"][0]["attributes"]["time_zone"],
        "Europe/Berlin"
    );
    assert_eq!(
        locations["data"][1]["attributes"]["time_zone"],
        "America/New_York"
    );
}

#[tokio::test]
async fn guest_window_is_local_wall_clock_time() {
    let api = Api::start().await;
    let mut attributes = guest_attributes("Ada Lovelace", "4821");
    attributes["starts_at"] = json!("2030-12-01T13:45:00Z");
    let response = api.create_guest(attributes).await;
    assert_eq!(response.status(), 201);
    let created = body(response).await["data"].clone();
    assert_eq!(created["type"], "access_guest");
    assert_eq!(
        created["attributes"]["starts_at"], "2030-12-01T13:45:00",
        "Z dropped, not converted"
    );
    assert_eq!(created["attributes"]["ends_at"], "2030-12-01T15:30:00");
    assert_eq!(created["attributes"]["status"], "upcoming");
    assert_eq!(created["attributes"]["pin"], "4821");
    assert!(is_utc_second(&created["attributes"]["created_at"]));

    let guests = api.sim.guests();
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].starts_at.to_string(), "2030-12-01 13:45:00");
    assert_eq!(guests[0].pin.as_deref(), Some("4821"));
    assert_eq!(guests[0].id, created["id"].as_str().unwrap());

    let mut offset = guest_attributes("Offset", "4822");
    offset["starts_at"] = json!("2030-12-01T13:45:00-05:00");
    let response = api.create_guest(offset.clone()).await;
    assert_eq!(response.status(), 422);
    let error = body(response).await;
    assert_eq!(error["attributes"], offset, "attributes echoed as sent");
    assert_eq!(error["errors"][0]["attribute"], "starts_at");

    let mut backwards = guest_attributes("Backwards", "4823");
    backwards["ends_at"] = json!("2030-12-01T12:00:00");
    let response = api.create_guest(backwards).await;
    assert_eq!(response.status(), 422);
    let error = body(response).await;
    assert_eq!(error["errors"][0]["attribute"], "ends_at");
    assert_eq!(
        error["errors"][0]["full_messages"][0],
        "ends_at must be after starts_at"
    );

    assert_eq!(api.sim.guests().len(), 1, "refused guests are not stored");
}

#[tokio::test]
async fn guest_validation_reports_every_problem() {
    let api = Api::start().await;
    let response = api.create_guest(json!({"name": ""})).await;
    assert_eq!(response.status(), 422);
    let errors = body(response).await["errors"].clone();
    let attributes: Vec<&Value> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["attribute"])
        .collect();
    assert_eq!(
        attributes,
        [
            &json!("name"),
            &json!("starts_at"),
            &json!("ends_at"),
            &Value::Null
        ]
    );

    let mut short = guest_attributes("Short", "123");
    short["pin"] = json!("123");
    let response = api.create_guest(short).await;
    assert_eq!(response.status(), 422);
    assert_eq!(body(response).await["errors"][0]["attribute"], "pin");

    let response = api
        .send_json(
            Method::POST,
            "/access_persons",
            json!({"type": "access_robot", "attributes": {"name": "R2"}}),
        )
        .await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn duplicate_pin_is_refused_with_the_documented_body() {
    let api = Api::start().await;
    let first = api.guest("First", "5815").await;
    let attributes = guest_attributes("Second", "5815");
    let response = api.create_guest(attributes.clone()).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        body(response).await,
        json!({
            "attributes": attributes,
            "errors": [{"attribute": "pin", "messages": ["has already been taken"], "full_messages": ["pin has already been taken"]}]
        })
    );

    // Once the holder is deactivated the PIN is free again.
    let id = first["id"].as_str().unwrap();
    let response = api.deactivate(id).await;
    assert_eq!(response.status(), 200);
    let deactivated = body(response).await;
    assert_eq!(deactivated["data"]["attributes"]["status"], "deactivated");
    assert_eq!(
        deactivated["data"]["meta"]["restricted_actions"],
        json!(["update"])
    );
    assert_eq!(api.create_guest(attributes).await.status(), 201);
}

#[tokio::test]
async fn generated_pins_updates_and_restrictions() {
    let api = Api::start().await;
    let mut attributes = guest_attributes("Generated", "");
    attributes.as_object_mut().unwrap().remove("pin");
    attributes["generate_pin"] = json!(true);
    let response = api.create_guest(attributes).await;
    assert_eq!(response.status(), 201);
    let guest = body(response).await["data"].clone();
    let pin = guest["attributes"]["pin"].as_str().unwrap().to_owned();
    assert!(pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()));
    let id = guest["id"].as_str().unwrap().to_owned();

    // Reissue and move the window; the PIN changes, the record stays.
    let response = api
        .send_json(
            Method::PUT,
            &format!("/access_persons/{id}"),
            json!({"attributes": {"generate_pin": true, "ends_at": "2030-12-01T16:00:00"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated = body(response).await["data"].clone();
    assert_ne!(updated["attributes"]["pin"], pin.as_str());
    assert_eq!(updated["attributes"]["ends_at"], "2030-12-01T16:00:00");
    assert_eq!(updated["attributes"]["name"], "Generated");

    // Expired guests are listed only on request and cannot be updated.
    let mut past = guest_attributes("Past", "7317");
    past["starts_at"] = json!("2020-01-02T16:04:00");
    past["ends_at"] = json!("2020-01-03T11:00:00");
    let expired = body(api.create_guest(past).await).await["data"].clone();
    assert_eq!(expired["attributes"]["status"], "expired");
    let expired_id = expired["id"].as_str().unwrap();
    let default_list = body(api.get("/access_persons").await).await;
    assert_eq!(default_list["meta"]["total_count"], 1);
    let expired_list = body(
        api.get("/access_persons?attributes[status][]=expired&attributes[status][]=deactivated")
            .await,
    )
    .await;
    assert_eq!(expired_list["data"][0]["id"], expired_id);
    let response = api
        .send_json(
            Method::PUT,
            &format!("/access_persons/{expired_id}"),
            json!({"attributes": {"name": "Renamed"}}),
        )
        .await;
    assert_eq!(response.status(), 422);
    // An expired guest's PIN is free for someone else.
    assert_eq!(
        api.create_guest(guest_attributes("Reuser", "7317"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn write_requests_need_json() {
    let api = Api::start().await;
    let response = api
        .request(Method::POST, "/access_persons")
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(body(response).await["message"].is_string());
    let response = api
        .request(Method::POST, "/access_persons")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = api
        .send_json(
            Method::POST,
            "/access_persons",
            json!({"type": "access_guest"}),
        )
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn granting_and_revoking_access() {
    let api = Api::start().await;
    let seed = api.sim.seed();
    let guest = api.guest("Grace Hopper", "3141").await;
    let guest_id = guest["id"].as_str().unwrap();
    let accesses = format!("/access_persons/{guest_id}/accesses");
    let grant = |accessible_id: &str| json!({"attributes": {"accessible_type": "lock", "accessible_id": accessible_id}});

    let response = api
        .send_json(Method::POST, &accesses, grant(&seed.locks[0].id))
        .await;
    assert_eq!(response.status(), 201);
    let access = body(response).await["data"].clone();
    assert_eq!(access["type"], "access_person_access");
    assert_eq!(
        access["attributes"]["accessible_id"],
        seed.locks[0].id.as_str()
    );
    assert_eq!(access["attributes"]["access_person_id"], guest_id);
    assert_eq!(access["attributes"]["access_person_type"], "access_guest");
    assert_eq!(access["attributes"]["devices_synced_count"], 1);
    let access_id = access["id"].as_str().unwrap();

    let unknown = api
        .send_json(
            Method::POST,
            &accesses,
            grant("00000000-0000-4000-8000-000000000000"),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let twice = api
        .send_json(Method::POST, &accesses, grant(&seed.locks[0].id))
        .await;
    assert_eq!(twice.status(), 409);
    let missing = api
        .send_json(
            Method::POST,
            &accesses,
            json!({"attributes": {"accessible_type": "lock"}}),
        )
        .await;
    assert_eq!(missing.status(), 422);
    assert_eq!(
        body(missing).await["errors"][0]["attribute"],
        "accessible_id"
    );

    let snapshots = api.sim.accesses();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].accessible_type, "lock");
    assert_eq!(snapshots[0].access_person_id, guest_id);

    let listed = body(api.get(&accesses).await).await;
    assert_eq!(listed["meta"]["total_count"], 1);
    let by_device = body(
        api.get(&format!(
            "/devices/{}/access_person_accesses",
            seed.locks[0].id
        ))
        .await,
    )
    .await;
    assert_eq!(by_device["data"][0]["id"], access_id);
    let shown = api.get(&format!("{accesses}/{access_id}")).await;
    assert_eq!(shown.status(), 200);

    let revoked = api
        .request(Method::DELETE, &format!("{accesses}/{access_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert!(api.sim.accesses().is_empty());
    assert_eq!(
        api.get(&format!("{accesses}/{access_id}")).await.status(),
        404
    );
}

#[tokio::test]
async fn deleting_a_guest() {
    let api = Api::start().await;
    let guest = api.guest("Temporary", "2718").await;
    let path = format!("/access_persons/{}", guest["id"].as_str().unwrap());
    let response = api.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(api.get(&path).await.status(), 404);
    assert_eq!(
        api.request(Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let snapshot = &api.sim.guests()[0];
    assert!(snapshot.deleted_at.is_some());
}

/// The client finds a create whose answer was lost by name, newest first, first page only.
#[tokio::test]
async fn newest_first_lookup_by_name_and_statuses() {
    let api = Api::start().await;
    let oldest = api.guest("Lost Create", "4821").await;
    api.guest("Someone Else", "6093").await;
    let middle = api.guest("Lost Create", "7140").await;
    let mut past = guest_attributes("Lost Create", "5190");
    past["starts_at"] = json!("2020-01-02T16:04:00");
    past["ends_at"] = json!("2020-01-03T11:00:00");
    assert_eq!(api.create_guest(past).await.status(), 201); // expired: not asked for
    api.sim.add_access_user("Lost Create", "8362", None); // a user: other type
    let newest = api.guest("Lost Create", "2957").await;
    assert_eq!(
        api.deactivate(middle["id"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // All of these were created within the same second or so: order must still hold.
    let lookup = "/access_persons?type=access_guest&attributes[name]=Lost%20Create\
        &attributes[status][]=upcoming&attributes[status][]=current\
        &attributes[status][]=deactivated&sort=-created_at&per_page=2&page=1";
    let found = body(api.get(lookup).await).await;
    let ids: Vec<&Value> = found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["id"])
        .collect();
    assert_eq!(ids, [&newest["id"], &middle["id"]]);
    assert_eq!(
        found["meta"],
        json!({"page": 1, "per_page": 2, "total_count": 3, "total_pages": 2})
    );
    let second_page = body(api.get(&lookup.replace("page=1", "page=2")).await).await;
    assert_eq!(second_page["data"][0]["id"], oldest["id"]);
    let oldest_first = body(
        api.get(&lookup.replace("sort=-created_at", "sort=created_at"))
            .await,
    )
    .await;
    assert_eq!(oldest_first["data"][0]["id"], oldest["id"]);
}
