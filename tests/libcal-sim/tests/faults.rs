//! Injected faults, the request log, and the same hooks over `/_sim` HTTP.

mod common;

use std::time::{Duration, Instant};

use common::Api;
use libcal_sim::{Fault, FaultKind, Status};
use serde_json::{Value, json};

#[tokio::test]
async fn the_next_requests_answer_5xx_then_recover() {
    let api = Api::start().await;
    api.sim.inject(
        Fault::new(FaultKind::Status { status: 503 })
            .on("/space/bookings")
            .times(2),
    );
    assert_eq!(
        api.get("1.1/space/locations").await.0,
        200,
        "other paths are untouched"
    );
    assert_eq!(api.get("1.1/space/bookings").await.0, 503);
    assert_eq!(api.get("api/1.1/space/bookings").await.0, 503);
    assert_eq!(api.get("1.1/space/bookings").await.0, 200);
    let statuses: Vec<_> = api.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses[1..],
        [200, 503, 503, 200],
        "after the token request"
    );
    assert_eq!(api.sim.requests()[0].path, "/1.1/oauth/token");
}

#[tokio::test]
async fn a_delay_holds_the_answer() {
    let api = Api::start().await;
    api.sim
        .inject(Fault::new(Fault::delay(Duration::from_millis(300))));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let sent = client
        .get(api.url("1.1/space/locations"))
        .bearer_auth(&api.token)
        .send()
        .await;
    assert!(sent.unwrap_err().is_timeout());
    let started = Instant::now();
    assert_eq!(api.get("1.1/space/locations").await.0, 200);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "one use only"
    );
}

#[tokio::test]
async fn an_empty_list_hides_existing_rows_once() {
    let api = Api::start().await;
    api.book_room(
        Status::Confirmed,
        "2026-07-01T14:00:00Z",
        "2026-07-01T15:00:00Z",
    );
    api.sim.inject(Fault::new(FaultKind::EmptyList));
    assert!(
        api.ok("1.1/space/bookings?date=2026-07-01")
            .await
            .is_empty()
    );
    assert_eq!(api.ok("1.1/space/bookings?date=2026-07-01").await.len(), 1);
}

#[tokio::test]
async fn an_unauthorized_fault_revokes_the_token() {
    let mut api = Api::start().await;
    api.sim.inject(Fault::new(FaultKind::Unauthorized));
    assert_eq!(api.get("1.1/space/locations").await.0, 401);
    assert_eq!(
        api.get("1.1/space/locations").await.0,
        401,
        "the old token stays dead"
    );
    api.token = api.fetch_token().await;
    assert_eq!(api.get("1.1/space/locations").await.0, 200);
}

#[tokio::test]
async fn hooks_work_over_http() {
    let api = Api::start().await;
    let post = |path: &str, body: Value| api.http.post(api.url(path)).json(&body).send();
    let made = post(
        "_sim/bookings",
        json!({
            "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.edu",
            "status": "Mediated Tentative",
            "rows": [{ "eid": api.room, "from": "2026-07-01T14:00:00Z", "to": "2026-07-01T15:00:00Z" }],
        }),
    )
    .await
    .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let book_id = made["book_id"].as_str().unwrap();
    let approve = post(&format!("_sim/bookings/{book_id}/approve"), json!({}))
        .await
        .unwrap();
    assert_eq!(approve.status(), 204);
    let twice = post(&format!("_sim/bookings/{book_id}/approve"), json!({}))
        .await
        .unwrap();
    assert_eq!(twice.status(), 409);
    let rows = api.ok("1.1/space/bookings?date=2026-07-01").await;
    assert_eq!(rows[0]["status"], "Mediated Approved");

    let missing = post("_sim/categories", json!({ "lid": 1, "name": "x" }))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let fault = json!({ "kind": "status", "status": 500, "path_contains": "/space/item" });
    assert_eq!(post("_sim/faults", fault).await.unwrap().status(), 204);
    assert_eq!(
        api.get(&format!("1.1/space/item/{}", api.room)).await.0,
        500
    );
    let log: Vec<Value> = api
        .http
        .get(api.url("_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.last().unwrap()["status"], 500);
    assert_eq!(
        post("_sim/tokens/revoke", json!({}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(api.get("1.1/space/locations").await.0, 401);
}
