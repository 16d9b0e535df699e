//! Shared helpers: a started simulator plus a reqwest client holding a valid token.

#![allow(dead_code)] // each test binary uses a different subset

use remotelock_sim::{SimConfig, SimHandle, Simulator};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

pub const ACCEPT_V1: &str = "application/vnd.lockstate+json; version=1";

pub struct Api {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
}

impl Api {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let sim = Simulator::start(config).await.expect("simulator starts");
        let token = sim.issue_tokens().access_token;
        Self {
            sim,
            http: reqwest::Client::new(),
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.sim
            .base_url()
            .join(path.trim_start_matches('/'))
            .expect("valid path")
            .to_string()
    }

    /// An authenticated request to the API under `/v1`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(&format!("/v1{path}")))
            .bearer_auth(&self.token)
            .header("Accept", ACCEPT_V1)
    }

    /// `POST /oauth/token` with the client-credentials grant of the default application.
    pub async fn client_credentials_token(&self) -> Response {
        self.http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "lockbridge-dev"),
                ("client_secret", "lockbridge-dev-secret"),
            ])
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    pub async fn send_json(&self, method: Method, path: &str, body: Value) -> Response {
        self.request(method, path)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn create_guest(&self, attributes: Value) -> Response {
        self.send_json(
            Method::POST,
            "/access_persons",
            json!({"type": "access_guest", "attributes": attributes}),
        )
        .await
    }

    /// `PUT /access_persons/:id/deactivate` with the `{}` body a JSON write needs.
    pub async fn deactivate(&self, id: &str) -> Response {
        self.send_json(
            Method::PUT,
            &format!("/access_persons/{id}/deactivate"),
            json!({}),
        )
        .await
    }

    /// A `GET /_sim/...` control (no token); returns its JSON body.
    pub async fn control_get(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        assert_eq!(response.status(), 200, "GET {path}");
        body(response).await
    }

    /// Grants `person` (a `data` object) the lock.
    pub async fn grant_lock(&self, person: &Value, lock_id: &str) -> Response {
        let path = format!("/access_persons/{}/accesses", id(person));
        let grant = json!({"attributes": {"accessible_type": "lock", "accessible_id": lock_id}});
        self.send_json(Method::POST, &path, grant).await
    }

    /// `GET /events{query}`, which must succeed.
    pub async fn events(&self, query: &str) -> Value {
        let response = self.get(&format!("/events{query}")).await;
        assert_eq!(response.status(), 200, "GET /events{query}");
        body(response).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("request")
    }

    /// A `POST`/`PUT /_sim/...` control with a JSON body.
    pub async fn control(&self, method: Method, path: &str, body: Value) -> Response {
        self.http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a guest that must succeed; returns its `data` object.
    pub async fn guest(&self, name: &str, pin: &str) -> Value {
        let response = self.create_guest(guest_attributes(name, pin)).await;
        assert_eq!(response.status(), 201, "creating {name}");
        body(response).await["data"].clone()
    }
}

/// A guest window far enough ahead to be `upcoming`.
pub fn guest_attributes(name: &str, pin: &str) -> Value {
    json!({
        "name": name,
        "email": "patron@example.edu",
        "pin": pin,
        "starts_at": "2030-12-01T13:45:00",
        "ends_at": "2030-12-01T15:30:00",
    })
}

pub fn id(resource: &Value) -> &str {
    resource["id"].as_str().unwrap()
}

pub async fn body(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

pub fn header(response: &Response, name: &str) -> i64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} header"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Answers RemoteLock's authorize page as its user would: opens it with `params` (it must show
/// the consent form), then presses `decision` (`approve` or `deny`), which posts the same
/// parameters back. Answers the reply to that press (a redirect, or the out-of-band JSON).
pub async fn consent(
    http: &reqwest::Client,
    sim: &SimHandle,
    params: &[(&str, &str)],
    decision: &str,
) -> Response {
    let url = sim.base_url().join("oauth/authorize").unwrap();
    let page = http.get(url.clone()).query(params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"<form method="post" action="/oauth/authorize">"#),
        "{page}"
    );
    let mut form = params.to_vec();
    form.push(("decision", decision));
    http.post(url).form(&form).send().await.unwrap()
}
