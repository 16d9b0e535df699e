//! Client credentials: good and bad credentials, token use, expiry, both prefixes.

mod common;

use std::time::Duration;

use common::Api;
use libcal_sim::SimConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn good_credentials_give_a_bearer_token_that_opens_the_api() {
    let api = Api::start().await;
    let config = api.sim.config();
    let response = api
        .token_response(&config.client_id, &config.client_secret)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "sp_r");
    assert_eq!(body.as_object().unwrap().len(), 4);
    assert_eq!(api.ok("1.1/space/locations").await.len(), 1);
}

#[tokio::test]
async fn json_bodies_and_the_api_prefix_work_too() {
    let api = Api::start().await;
    let config = api.sim.config();
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": config.client_id,
        "client_secret": config.client_secret,
    });
    let response = api
        .http
        .post(api.url("api/1.1/oauth/token"))
        .json(&body)
        .send()
        .await;
    assert_eq!(response.unwrap().status(), 200);
}

#[tokio::test]
async fn wrong_credentials_are_400_invalid_client() {
    let api = Api::start().await;
    let response = api
        .token_response(&api.sim.config().client_id, "wrong")
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "The client credentials are invalid"
    );

    let form = [
        ("grant_type", "password"),
        ("client_id", "1"),
        ("client_secret", "x"),
    ];
    let response = api
        .http
        .post(api.url("1.1/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_are_401() {
    let config = SimConfig {
        token_ttl: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let mut api = Api::start_with(config).await;
    let bare = api
        .http
        .get(api.url("1.1/space/locations"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    let body: Value = bare.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");

    let live = api.token.clone();
    api.token = "not-a-token".to_owned();
    assert_eq!(api.get("1.1/space/locations").await.0, 401);
    api.token = live;
    assert_eq!(api.get("1.1/space/locations").await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(api.get("1.1/space/locations").await.0, 401);
    api.token = api.fetch_token().await;
    assert_eq!(api.get("1.1/space/locations").await.0, 200);
}

#[tokio::test]
async fn revoked_tokens_are_401() {
    let api = Api::start().await;
    api.sim.revoke_tokens();
    assert_eq!(api.get("api/1.1/space/locations").await.0, 401);
}

#[tokio::test]
async fn a_token_without_the_spaces_read_scope_is_403() {
    let config = SimConfig {
        scope: "cal_r ev_r".to_owned(),
        ..SimConfig::default()
    };
    let api = Api::start_with(config).await;
    let (status, body) = api.get("1.1/space/bookings").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
}
