//! Every request the simulator saw (except its own `/_sim` controls), for assertions such as
//! "the client refreshed exactly once" or "it retried after the 503".

use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::faults::ConnectionAborted;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    #[serde(serialize_with = "method_name")]
    pub method: Method,
    /// As requested, including `/v1` and the query string.
    pub path: String,
    /// `None` while unanswered, or when the connection was dropped instead of answered.
    pub status: Option<u16>,
    pub at: DateTime<Utc>,
}

fn method_name<S: Serializer>(method: &Method, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(method.as_str())
}

#[derive(Default)]
pub struct RequestLog(Mutex<Vec<RequestRecord>>);

impl RequestLog {
    fn records(&self) -> std::sync::MutexGuard<'_, Vec<RequestRecord>> {
        self.0.lock().expect("request log poisoned")
    }

    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.records().clone()
    }

    fn start(&self, method: Method, path: String) -> usize {
        let mut records = self.records();
        records.push(RequestRecord {
            method,
            path,
            status: None,
            at: Utc::now(),
        });
        records.len() - 1
    }

    fn finish(&self, index: usize, status: Option<u16>) {
        self.records()[index].status = status;
    }
}

/// Outermost middleware: logs on arrival (so held requests show up) and fills in the status.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(crate::control::PREFIX) {
        return next.run(request).await;
    }
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    tracing::debug!(method = %request.method(), %path, "request");
    let index = state.requests.start(request.method().clone(), path);
    let response = next.run(request).await;
    let answered = response.extensions().get::<ConnectionAborted>().is_none();
    state
        .requests
        .finish(index, answered.then(|| response.status().as_u16()));
    response
}
