//! `Content-Type: application/json` on every POST/PUT/PATCH, body or not (remotelock-api.md §1.3).

mod common;

use common::{Api, body};
use remotelock_sim::PersonStatus;
use reqwest::Method;

fn status_of(api: &Api, id: &str) -> PersonStatus {
    api.sim
        .guests()
        .into_iter()
        .find(|g| g.id == id)
        .expect("guest exists")
        .status
}

#[tokio::test]
async fn bodiless_action_without_json_content_type_is_415_and_changes_nothing() {
    let api = Api::start().await;
    let guest = api.guest("Forgetful Client", "4821").await;
    let id = guest["id"].as_str().unwrap();
    let path = format!("/access_persons/{id}/deactivate");

    let bare = api.request(Method::PUT, &path).send().await.unwrap();
    assert_eq!(bare.status(), 415);
    assert!(
        bare.headers().contains_key("x-ratelimit-remaining"),
        "rate limited like any request"
    );
    assert_eq!(body(bare).await["type"], "unsupported_media_type");
    let as_form = api
        .request(Method::PUT, &path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(as_form.status(), 415);
    assert_eq!(status_of(&api, id), PersonStatus::Upcoming);
    let logged = api.sim.requests();
    assert_eq!(logged.last().unwrap().status, Some(415), "logged");

    let with_charset = api
        .request(Method::PUT, &path)
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(with_charset.status(), 200);
    assert_eq!(
        body(with_charset).await["data"]["attributes"]["status"],
        "deactivated"
    );
    assert_eq!(status_of(&api, id), PersonStatus::Deactivated);
}

#[tokio::test]
async fn json_write_needs_a_json_object_body() {
    let api = Api::start().await;
    let guest = api.guest("Careful Client", "4821").await;
    let path = format!(
        "/access_persons/{}/deactivate",
        guest["id"].as_str().unwrap()
    );
    for (sent, problem) in [
        ("", "empty"),
        ("  ", "blank"),
        ("[]", "an array"),
        ("\"text\"", "a string"),
        ("{", "malformed"),
    ] {
        let response = api
            .request(Method::PUT, &path)
            .header("Content-Type", "application/json")
            .body(sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{problem} body");
        let error = body(response).await;
        assert_eq!(error["type"], "bad_request", "general-error shape");
        assert!(error["message"].is_string());
    }
    assert_eq!(
        status_of(&api, guest["id"].as_str().unwrap()),
        PersonStatus::Upcoming
    );

    // POST is held to the same rule, before any handler reads the body.
    let create = api
        .request(Method::POST, "/access_persons")
        .header("Content-Type", "text/plain")
        .body(r#"{"type": "access_guest", "attributes": {}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 415);
    assert!(api.sim.guests().len() == 1);
}

#[tokio::test]
async fn delete_and_get_need_no_content_type() {
    let api = Api::start().await;
    let guest = api.guest("Short Stay", "4821").await;
    let path = format!("/access_persons/{}", guest["id"].as_str().unwrap());
    let shown = api.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    let deleted = api.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
}

#[tokio::test]
async fn oauth_form_posts_are_not_held_to_the_json_rule() {
    let api = Api::start().await;
    let response = api.client_credentials_token().await;
    assert_eq!(response.status(), 200);
}
