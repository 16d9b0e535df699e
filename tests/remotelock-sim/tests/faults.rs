//! Injected faults, the rate limit and the `/_sim` controls.

mod common;

use std::time::{Duration, Instant};

use common::{Api, body, guest_attributes, header};
use remotelock_sim::{Fault, FaultKind, Method, SimConfig};
use serde_json::json;

fn rate_headers(response: &reqwest::Response) -> (i64, i64, i64) {
    (
        header(response, "x-ratelimit-limit"),
        header(response, "x-ratelimit-remaining"),
        header(response, "x-ratelimit-reset"),
    )
}

#[tokio::test]
async fn status_fault_answers_the_code_and_commits_nothing() {
    let api = Api::start().await;
    api.sim
        .inject(Fault::new("/access_persons", FaultKind::Status(503)).on(Method::POST));

    // Other methods are not affected.
    assert_eq!(api.get("/access_persons").await.status(), 200);
    let response = api.create_guest(guest_attributes("Unlucky", "1911")).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("x-ratelimit-remaining"));
    assert!(body(response).await["message"].is_string());
    assert!(api.sim.guests().is_empty());

    // Used up: the retry goes through.
    assert_eq!(
        api.create_guest(guest_attributes("Unlucky", "1911"))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn latency_fault_delays_then_answers() {
    let api = Api::start().await;
    api.sim.inject(Fault::new(
        "/devices",
        FaultKind::Latency(Duration::from_millis(400)),
    ));
    let started = Instant::now();
    let response = api.get("/devices").await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn timeout_fault_never_answers_and_commits_nothing() {
    let api = Api::start().await;
    api.sim
        .inject(Fault::new("/access_persons", FaultKind::Timeout).on(Method::POST));
    let error = api
        .request(reqwest::Method::POST, "/access_persons")
        .timeout(Duration::from_millis(300))
        .json(&json!({"type": "access_guest", "attributes": guest_attributes("Held", "2922")}))
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error:?}");
    assert!(api.sim.guests().is_empty());
    let held = api
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(held.path, "/v1/access_persons");
    assert_eq!(held.status, None);
}

#[tokio::test]
async fn rate_limit_fault_answers_429_with_exhausted_headers() {
    let api = Api::start().await;
    api.sim.inject(Fault::new("/devices", FaultKind::RateLimit));
    let response = api.get("/devices").await;
    assert_eq!(response.status(), 429);
    let (limit, remaining, reset) = rate_headers(&response);
    assert_eq!((limit, remaining), (120, 0));
    assert!(reset > chrono::Utc::now().timestamp());
    assert_eq!(
        body(response).await["message"],
        "Your account has exceeded the rate limit. Check the X-RateLimit-* headers."
    );
    // Only the fault said so: the real window has plenty left.
    let response = api.get("/devices").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ratelimit-remaining"), 118);
}

#[tokio::test]
async fn dropped_response_after_commit_leaves_the_guest_behind() {
    let api = Api::start().await;
    api.sim
        .inject(Fault::new("/access_persons", FaultKind::DropResponseAfterCommit).on(Method::POST));
    let error = api
        .request(reqwest::Method::POST, "/access_persons")
        .timeout(Duration::from_secs(5))
        .json(&json!({"type": "access_guest", "attributes": guest_attributes("Orphan", "3933")}))
        .send()
        .await
        .expect_err("connection dropped");
    assert!(
        !error.is_timeout(),
        "must fail fast, not time out: {error:?}"
    );

    let guests = api.sim.guests();
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].name, "Orphan");
    assert_eq!(guests[0].pin.as_deref(), Some("3933"));
    let dropped = api
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(dropped.status, None);

    // A blind retry now collides on the PIN: the reason clients must look before re-creating.
    assert_eq!(
        api.create_guest(guest_attributes("Orphan", "3933"))
            .await
            .status(),
        422
    );
}

#[tokio::test]
async fn rate_limit_allows_120_per_minute_per_account() {
    let api = Api::start().await;
    // A second token of the same account shares the window.
    let other_token = api.sim.issue_tokens().access_token;
    let mut reset_at = None;
    for i in 0..120 {
        let token = if i % 2 == 0 { &api.token } else { &other_token };
        let response = api
            .http
            .get(api.url("/v1/devices"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        let (limit, remaining, reset) = rate_headers(&response);
        assert_eq!((limit, remaining), (120, 119 - i));
        assert_eq!(*reset_at.get_or_insert(reset), reset, "fixed window");
    }
    let response = api.get("/devices").await;
    assert_eq!(response.status(), 429);
    let (limit, remaining, reset) = rate_headers(&response);
    assert_eq!((limit, remaining, Some(reset)), (120, 0, reset_at));
    let now = chrono::Utc::now().timestamp();
    assert!(reset > now && reset <= now + 60);
    assert_eq!(
        body(response).await,
        json!({"message": "Your account has exceeded the rate limit. Check the X-RateLimit-* headers."})
    );
    // Errors carry the headers too, and OAuth is not limited.
    let unauthenticated = api.http.get(api.url("/v1/devices")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 429);
    let token = api.client_credentials_token().await;
    assert_eq!(token.status(), 200);
    assert!(!token.headers().contains_key("x-ratelimit-limit"));
}

#[tokio::test]
async fn limit_is_configurable_and_headers_are_on_errors() {
    let api = Api::start_with(SimConfig {
        rate_limit_per_minute: 2,
        ..SimConfig::default()
    })
    .await;
    let not_found = api.get("/devices/nope").await;
    assert_eq!(not_found.status(), 404);
    assert_eq!(rate_headers(&not_found).0, 2);
    assert_eq!(header(&not_found, "x-ratelimit-remaining"), 1);
    assert_eq!(api.get("/devices").await.status(), 200);
    assert_eq!(api.get("/devices").await.status(), 429);
}

#[tokio::test]
async fn http_controls_mirror_the_handle() {
    let api = Api::start().await;
    let control = |path: &str| api.url(&format!("/_sim/{path}"));

    // Faults over HTTP, matched on the path without /v1.
    let response = api
        .http
        .post(control("faults"))
        .json(&json!({"method": "get", "path_prefix": "/user", "kind": "status", "status": 502, "times": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(api.get("/user").await.status(), 502);
    let unversioned = api
        .http
        .get(api.url("/user"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(unversioned.status(), 502);
    assert_eq!(api.get("/user").await.status(), 200);

    // Tokens: mint, then expire every one.
    let response = api.http.post(control("tokens")).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let minted = body(response).await;
    let access = minted["access_token"].as_str().unwrap().to_owned();
    assert!(minted["refresh_token"].is_string());
    let user = |token: String| api.http.get(api.url("/v1/user")).bearer_auth(token).send();
    assert_eq!(user(access.clone()).await.unwrap().status(), 200);
    assert_eq!(
        api.http
            .post(control("tokens/expire"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(user(access).await.unwrap().status(), 403);
    assert_eq!(user(api.token.clone()).await.unwrap().status(), 403);

    // State and request log.
    let state = body(api.http.get(control("state")).send().await.unwrap()).await;
    assert_eq!(state["account_id"], api.sim.seed().account_id.as_str());
    assert_eq!(state["locks"].as_array().unwrap().len(), 4);
    assert_eq!(state["locations"][0]["time_zone"], "America/New_York");
    assert_eq!(state["guests"], json!([]));
    let requests = body(api.http.get(control("requests")).send().await.unwrap()).await;
    let requests = requests.as_array().unwrap();
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[0]["path"], "/v1/user");
    assert_eq!(requests[0]["status"], 502);
    assert!(
        requests
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/_sim"))
    );
}

#[tokio::test]
async fn shutdown_releases_held_requests_and_stops_serving() {
    let api = Api::start().await;
    api.sim.inject(Fault::new("/devices", FaultKind::Timeout));
    let held = tokio::spawn(api.request(reqwest::Method::GET, "/devices").send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.sim.shutdown();
    let outcome = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("held request released")
        .unwrap();
    assert!(outcome.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        reqwest::get(api.url("/v1/devices")).await.is_err(),
        "no longer listening"
    );
}
