//! Every request except the `/_sim` controls, for assertions such as "it retried after the 503".

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::router::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    /// As requested, with the prefix and query string.
    pub path: String,
    pub status: u16,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct RequestLog(Mutex<Vec<RequestRecord>>);

impl RequestLog {
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.0.lock().expect("request log poisoned").clone()
    }
}

pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_owned(), |p| p.to_string());
    let at = Utc::now();
    let response = next.run(request).await;
    state
        .requests
        .0
        .lock()
        .expect("request log poisoned")
        .push(RequestRecord {
            method,
            path,
            status: response.status().as_u16(),
            at,
        });
    response
}
