//! booking-intake's HTTP API, spoken to as an upstream source does: with its bearer token.

use std::net::SocketAddr;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

pub struct IntakeClient {
    addr: SocketAddr,
    token: String,
    pub http: reqwest::Client,
}

impl IntakeClient {
    /// For an intake listening on `addr` where `token` is one source's `intake.tokens.<source>`.
    pub fn new(addr: SocketAddr, token: &str, http: reqwest::Client) -> Self {
        Self {
            addr,
            token: token.to_owned(),
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request with the source's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// The status and the JSON body (`Null` when there is none).
    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .request(Method::PUT, path)
            .json(body)
            .send()
            .await
            .expect("PUT");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// PUTs each `(path, body)` of a catalogue in turn; each must be new (201).
    pub async fn put_catalogue(&self, entries: impl IntoIterator<Item = (&str, Value)>) {
        for (path, body) in entries {
            let (status, body) = self.put(path, &body).await;
            assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
        }
    }
}
