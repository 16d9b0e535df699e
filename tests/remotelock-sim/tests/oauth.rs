//! OAuth server: authorization code, refresh rotation, client credentials, revocation.

mod common;

use common::{ACCEPT_V1, body, consent};
use remotelock_sim::{Fault, FaultKind, SimConfig, Simulator};
use reqwest::redirect::Policy;
use serde_json::Value;
use url::Url;

const REDIRECT: &str = "http://localhost:8080/remotelock/callback";
const ID: &str = "lockbridge-dev";
const SECRET: &str = "lockbridge-dev-secret";

struct OAuth {
    sim: remotelock_sim::SimHandle,
    http: reqwest::Client,
}

impl OAuth {
    async fn start() -> Self {
        Self {
            sim: Simulator::start(SimConfig::default()).await.unwrap(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> Url {
        self.sim.base_url().join(path).unwrap()
    }

    async fn authorize(&self, redirect_uri: &str) -> reqwest::Response {
        let params = [
            ("client_id", ID),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("state", "xyz-123"),
        ];
        consent(&self.http, &self.sim, &params, "approve").await
    }

    async fn code(&self) -> String {
        let response = self.authorize(REDIRECT).await;
        assert_eq!(response.status(), 302);
        let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(REDIRECT));
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("state").as_deref(), Some("xyz-123"));
        param("code").expect("code in redirect")
    }

    async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.send_token(form).await.unwrap()
    }

    async fn send_token(&self, form: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.url("oauth/token"))
            .form(form)
            .send()
            .await
    }

    async fn exchange(&self, code: &str, redirect_uri: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token(&refresh_form(refresh_token)).await
    }

    /// The client-credentials grant, the client authenticating with HTTP Basic.
    async fn client_credentials_over_basic(&self, secret: &str) -> reqwest::Response {
        self.http
            .post(self.url("oauth/token"))
            .basic_auth(ID, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    async fn user_status(&self, access_token: &str) -> u16 {
        self.http
            .get(self.url("v1/user"))
            .bearer_auth(access_token)
            .header("Accept", ACCEPT_V1)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn refresh_form(refresh_token: &str) -> [(&'static str, &str); 4] {
    [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", ID),
        ("client_secret", SECRET),
    ]
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
        .to_owned()
}

#[tokio::test]
async fn authorization_code_flow_and_refresh_rotation() {
    let oauth = OAuth::start().await;
    let code = oauth.code().await;

    let response = oauth.exchange(&code, REDIRECT).await;
    assert_eq!(response.status(), 200);
    let first = body(response).await;
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 7200);
    assert!(first["created_at"].as_i64().unwrap() > 1_700_000_000);
    let (access, refresh) = (text(&first, "access_token"), text(&first, "refresh_token"));
    assert_eq!(oauth.user_status(&access).await, 200);

    // The code is single use.
    let reused = oauth.exchange(&code, REDIRECT).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(body(reused).await["error"], "invalid_grant");

    let response = oauth.refresh(&refresh).await;
    assert_eq!(response.status(), 200);
    let second = body(response).await;
    let (new_access, new_refresh) = (
        text(&second, "access_token"),
        text(&second, "refresh_token"),
    );
    assert_ne!(new_refresh, refresh);
    assert_eq!(oauth.user_status(&new_access).await, 200);
    assert_eq!(
        oauth.user_status(&access).await,
        403,
        "the rotated-out access token died too"
    );

    // Reusing the old refresh token is refused.
    let response = oauth.refresh(&refresh).await;
    assert_eq!(response.status(), 400);
    let error = body(response).await;
    assert_eq!(error["error"], "invalid_grant");
    assert!(error["error_description"].is_string());
    // The new one still works exactly once.
    let response = oauth.refresh(&new_refresh).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn code_is_bound_to_its_redirect_uri() {
    let oauth = OAuth::start().await;
    let code = oauth.code().await;
    let response = oauth
        .exchange(&code, "http://localhost:9999/elsewhere")
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(body(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn bad_client_is_refused() {
    let oauth = OAuth::start().await;
    let response = oauth
        .http
        .get(oauth.url("oauth/authorize"))
        .query(&[
            ("client_id", "someone-else"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let response = oauth
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", "wrong"),
        ])
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(body(response).await["error"], "invalid_client");

    let response = oauth.client_credentials_over_basic("wrong").await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn client_credentials_over_basic_auth_have_no_refresh_token() {
    let oauth = OAuth::start().await;
    let response = oauth.client_credentials_over_basic(SECRET).await;
    assert_eq!(response.status(), 200);
    let token = body(response).await;
    assert!(token.get("refresh_token").is_none());
    assert_eq!(oauth.user_status(&text(&token, "access_token")).await, 200);

    let response = oauth
        .token(&[
            ("grant_type", "password"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(body(response).await["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn out_of_band_redirect_renders_the_code() {
    let oauth = OAuth::start().await;
    let response = oauth.authorize("urn:ietf:wg:oauth:2.0:oob").await;
    assert_eq!(response.status(), 200);
    let rendered = body(response).await;
    assert_eq!(rendered["state"], "xyz-123");
    let response = oauth
        .exchange(&text(&rendered, "code"), "urn:ietf:wg:oauth:2.0:oob")
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn revoked_and_expired_tokens() {
    let oauth = OAuth::start().await;
    let pair = oauth.sim.issue_tokens();
    assert_eq!(oauth.user_status(&pair.access_token).await, 200);

    oauth.sim.expire_access_tokens();
    assert_eq!(oauth.user_status(&pair.access_token).await, 403);
    // Refreshing still works after the access token expired.
    let response = oauth.refresh(&pair.refresh_token).await;
    assert_eq!(response.status(), 200);
    let renewed = body(response).await;
    let access = text(&renewed, "access_token");
    assert_eq!(oauth.user_status(&access).await, 200);

    let response = oauth
        .http
        .post(oauth.url("oauth/revoke"))
        .form(&[
            ("client_id", ID),
            ("client_secret", SECRET),
            ("token", &access),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(oauth.user_status(&access).await, 403);
    let response = oauth.refresh(&text(&renewed, "refresh_token")).await;
    assert_eq!(
        response.status(),
        400,
        "revoking the access token revokes its refresh token"
    );
}

#[tokio::test]
async fn bad_token_status_is_configurable() {
    let sim = Simulator::start(SimConfig {
        bad_token_status: 401,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let response = reqwest::get(sim.base_url().join("v1/user").unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn refresh_whose_answer_is_lost_still_rotates() {
    let oauth = OAuth::start().await;
    let pair = oauth.sim.issue_tokens();
    oauth.sim.inject(Fault::new(
        "/oauth/token",
        FaultKind::DropResponseAfterCommit,
    ));
    let form = refresh_form(&pair.refresh_token);
    assert!(oauth.send_token(&form).await.is_err());
    // The server rotated: the client's stored refresh token is dead now.
    let response = oauth.token(&form).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn the_authorize_page_names_the_account_and_a_denial_says_so_with_the_state() {
    let oauth = OAuth::start().await;
    let page = oauth
        .http
        .get(oauth.url("oauth/authorize"))
        .query(&[
            ("client_id", ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "<b>\"x\"</b>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    // The account the token will act on: the seeded one, unless a test picks another.
    assert!(
        page.contains(r#"<strong id="account">Riverside Public Library</strong>"#),
        "{page}"
    );
    // What the client sent comes back escaped, never as markup.
    assert!(page.contains("&lt;b&gt;&quot;x&quot;&lt;/b&gt;"), "{page}");

    let params = [
        ("client_id", ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "xyz-123"),
    ];
    let denied = consent(&oauth.http, &oauth.sim, &params, "deny").await;
    assert_eq!(denied.status(), 302);
    let location = Url::parse(denied.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("error".to_owned(), "access_denied".to_owned()),
            ("state".to_owned(), "xyz-123".to_owned())
        ]
    );
    // An approval posted for another client is refused like the page itself.
    let forged = oauth
        .http
        .post(oauth.url("oauth/authorize"))
        .form(&[
            ("client_id", "someone-else"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}
