//! The admin service in-process against the RemoteLock simulator, and a client for its JSON
//! API as staff tools drive it: authorize through the real OAuth redirects, then link spaces.

use std::net::{SocketAddr, TcpListener};

use remotelock_sim::{SimConfig, SimHandle, Simulator};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header::LOCATION, redirect};
use serde_json::{Value, json};

use crate::{TestBroker, TestDatabase, services};

pub const API_TOKEN: &str = "test-admin-token";
pub const CALLBACK_PATH: &str = "/remotelock/callback";

/// A free loopback port, for a service whose own URL must be configured before it binds (the
/// admin's callback is `remotelock.redirect_url`): the OS picks it, and it is released at once.
pub fn free_local_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
}

/// Starts the simulator and the admin alone, the admin's callback on a reserved port.
pub async fn start(db: &TestDatabase, broker: &TestBroker) -> (services::Running, SimHandle) {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("the RemoteLock simulator starts");
    let addr = free_local_port();
    let base = sim.base_url().to_string();
    let settings = services::settings(&[
        ("database.url", db.url.clone()),
        ("amqp.url", broker.url.clone()),
        ("remotelock.api_url", base.clone()),
        ("remotelock.oauth_url", base),
        (
            "remotelock.redirect_url",
            format!("http://{addr}{CALLBACK_PATH}"),
        ),
        ("admin.listen", addr.to_string()),
        ("admin.api_token", API_TOKEN.to_owned()),
    ]);
    let admin = services::spawn::<admin::Application>(settings).await;
    (admin, sim)
}

/// The admin's JSON API and OAuth callback, spoken to over HTTP.
pub struct AdminClient {
    addr: SocketAddr,
    /// Never follows redirects, so each hop of the OAuth flow can be checked.
    pub http: reqwest::Client,
}

impl AdminClient {
    /// For an admin listening on `addr` with `admin.api_token` = [`API_TOKEN`].
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .expect("HTTP client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request with the API token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(API_TOKEN)
    }

    /// Sends a request; answers the status and the JSON body (`Null` when there is none).
    pub async fn call(&self, request: RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("the admin answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Starts the OAuth flow, approves on RemoteLock's authorize page as the admin would, and
    /// answers where RemoteLock sends the browser back: the callback URL with `code` and
    /// `state`.
    pub async fn approved_callback(&self) -> String {
        let (status, started) = self
            .call(self.request(Method::POST, "/api/v1/remotelock/authorization"))
            .await;
        assert_eq!(status, StatusCode::OK, "{started}");
        let authorize_url = started["authorize_url"].as_str().expect("authorize_url");
        let page = self
            .http
            .get(authorize_url)
            .send()
            .await
            .expect("RemoteLock's authorize page answers");
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains(r#"value="approve""#));
        // The page's form posts the authorize parameters back with the button pressed.
        let mut form: Vec<(String, String)> = url::Url::parse(authorize_url)
            .expect("a URL")
            .query_pairs()
            .into_owned()
            .collect();
        form.push(("decision".to_owned(), "approve".to_owned()));
        let approval = self
            .http
            .post(authorize_url.split('?').next().expect("a path"))
            .form(&form)
            .send()
            .await
            .expect("RemoteLock's authorize page takes the approval");
        assert_eq!(approval.status(), StatusCode::FOUND);
        approval.headers()[LOCATION]
            .to_str()
            .expect("ASCII Location")
            .to_owned()
    }

    /// Opens `url` as the browser would: no token.
    pub async fn browse(&self, url: &str) -> Response {
        self.http.get(url).send().await.expect("the admin answers")
    }

    /// The whole authorization-code flow, as an admin's browser goes through it.
    pub async fn authorize(&self) {
        let callback = self.approved_callback().await;
        assert!(callback.starts_with(&self.url(CALLBACK_PATH)), "{callback}");
        let landed = self.browse(&callback).await;
        let status = landed.status();
        assert_eq!(status, StatusCode::OK, "{}", landed.text().await.unwrap());
    }

    pub async fn link(&self, space_id: &str, lock_id: &str) -> (StatusCode, Value) {
        self.call(
            self.request(Method::POST, "/api/v1/links")
                .json(&json!({"space_id": space_id, "lock_id": lock_id})),
        )
        .await
    }
}
