//! Several accounts: the authorize page picks the one a test chose, tokens act on their
//! account, and an added account shows none of the seeded account's records.

mod common;

use common::{Api, body, consent, guest_attributes};
use remotelock_sim::{PersonStatus, SimConfig, SimHandle, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OUT_OF_BAND: &str = "urn:ietf:wg:oauth:2.0:oob";
const CLIENT: [(&str, &str); 2] = [
    ("client_id", "lockbridge-dev"),
    ("client_secret", "lockbridge-dev-secret"),
];

/// The token response of a whole authorization-code flow, approved by whatever account the
/// authorize page picks now.
async fn authorize(sim: &SimHandle) -> Value {
    let http = reqwest::Client::new();
    let params = [
        ("client_id", "lockbridge-dev"),
        ("response_type", "code"),
        ("redirect_uri", OUT_OF_BAND),
    ];
    let approval = consent(&http, sim, &params, "approve").await;
    let code = body(approval).await["code"].as_str().unwrap().to_owned();
    token_grant(
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", OUT_OF_BAND),
        ],
    )
    .await
}

/// `POST /oauth/token` with `grant` and the client's credentials: the token response.
async fn token_grant(sim: &SimHandle, grant: &[(&str, &str)]) -> Value {
    let response = reqwest::Client::new()
        .post(sim.base_url().join("oauth/token").unwrap())
        .form(&[grant, &CLIENT[..]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

/// An API client holding `tokens`' access token.
fn api_with(sim: &SimHandle, tokens: &Value) -> Api {
    Api {
        sim: sim.clone(),
        http: reqwest::Client::new(),
        token: tokens["access_token"].as_str().unwrap().to_owned(),
    }
}

async fn account_of(api: &Api) -> (String, String) {
    let account = body(api.get("/account").await).await;
    let data = &account["data"];
    (
        data["id"].as_str().unwrap().to_owned(),
        data["attributes"]["name"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_authorize_page_picks_the_chosen_account_for_the_codes_it_issues() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let seeded = sim.seed().account_id;
    let schools = sim.add_account("Riverside Schools");
    assert_ne!(schools, seeded);

    // Adding an account does not change the pick.
    let before = api_with(&sim, &authorize(&sim).await);
    assert_eq!(account_of(&before).await.0, seeded);

    sim.approve_as(&schools);
    let tokens = authorize(&sim).await;
    let chosen = api_with(&sim, &tokens);
    assert_eq!(
        account_of(&chosen).await,
        (schools.clone(), "Riverside Schools".to_owned())
    );
    // And for every code from now on.
    assert_eq!(
        account_of(&api_with(&sim, &authorize(&sim).await)).await.0,
        schools
    );

    // A refreshed token keeps the account of its authorization.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let refreshed = api_with(&sim, &token_grant(&sim, &refresh).await);
    assert_eq!(account_of(&refreshed).await.0, schools);

    // Tokens issued before still act on the seeded account; the pick can go back.
    assert_eq!(account_of(&before).await.0, seeded);
    sim.approve_as(&seeded);
    assert_eq!(
        account_of(&api_with(&sim, &authorize(&sim).await)).await.0,
        seeded
    );
    // The user is the same whatever the account.
    let user = body(refreshed.get("/user").await).await;
    assert_eq!(user["data"]["attributes"]["primary_account_id"], seeded);
}

#[tokio::test]
async fn an_added_account_shows_none_of_the_seeded_records() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let seeded = Api {
        sim: sim.clone(),
        http: reqwest::Client::new(),
        token: sim.issue_tokens().access_token,
    };
    let guest = seeded.guest("Seeded Guest", "4827").await;
    let lock = sim.seed().locks[0].id.clone();
    let location = sim.seed().locations[0].id.clone();

    sim.approve_as(&sim.add_account("Riverside Schools"));
    let other = api_with(&sim, &authorize(&sim).await);

    for collection in [
        "/devices",
        "/locations",
        "/access_persons?sort=-created_at",
        "/events",
    ] {
        let response = other.get(collection).await;
        assert_eq!(response.status(), StatusCode::OK, "{collection}");
        let listed = body(response).await;
        assert_eq!(listed["data"], json!([]), "{collection}");
        assert_eq!(listed["meta"]["total_count"], 0, "{collection}");
        assert_eq!(listed["meta"]["page"], 1, "{collection}");
    }
    let guest_id = guest["id"].as_str().unwrap();
    for record in [
        format!("/devices/{lock}"),
        format!("/locations/{location}"),
        format!("/access_persons/{guest_id}"),
        format!("/access_persons/{guest_id}/accesses"),
        format!("/devices/{lock}/access_person_accesses"),
    ] {
        assert_eq!(
            other.get(&record).await.status(),
            StatusCode::NOT_FOUND,
            "{record}"
        );
    }
    // Writes find nothing either, and change nothing in the seeded account.
    let created = other.create_guest(guest_attributes("Other", "5938")).await;
    assert_eq!(created.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        other.deactivate(guest_id).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(sim.guests().len(), 1);
    assert_eq!(sim.guests()[0].status, PersonStatus::Upcoming);
    // Writes still need JSON, whichever the account.
    let bare = other
        .request(
            Method::PUT,
            &format!("/access_persons/{guest_id}/deactivate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The seeded token still sees everything.
    let devices = body(seeded.get("/devices").await).await;
    assert_eq!(devices["meta"]["total_count"], 4);
}

#[tokio::test]
async fn client_credentials_act_on_the_seeded_account_whatever_the_pick() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    sim.approve_as(&sim.add_account("Riverside Schools"));
    let issued = token_grant(&sim, &[("grant_type", "client_credentials")]).await;
    let api = api_with(&sim, &issued);
    assert_eq!(account_of(&api).await.0, sim.seed().account_id);
}

#[tokio::test]
async fn accounts_are_added_and_picked_over_http_controls() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| sim.base_url().join(path).unwrap();
    let added = http
        .post(url("_sim/accounts"))
        .json(&json!({"name": "Riverside Schools"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let id = body(added).await["id"].as_str().unwrap().to_owned();

    let pick = |account_id: String| {
        http.put(url("_sim/accounts/approving"))
            .json(&json!({ "account_id": account_id }))
            .send()
    };
    let unknown = pick("00000000-0000-4000-8000-000000000000".to_owned())
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        pick(id.clone()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );

    let api = api_with(&sim, &authorize(&sim).await);
    assert_eq!(account_of(&api).await, (id, "Riverside Schools".to_owned()));
}
