//! Queued failures that tests inject to exercise the client's retry and recovery paths.

use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;
use crate::rate_limit;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Fault {
    /// `None` matches every method.
    pub method: Option<Method>,
    /// Matched against the request path without the `/v1` prefix, e.g. `"/access_persons"`
    /// (plain string prefix). Faults also apply to `/oauth/...`.
    pub path_prefix: String,
    pub kind: FaultKind,
    /// How many matching requests the fault affects.
    pub times: u32,
}

impl Fault {
    /// A fault hitting the next matching request of any method once.
    pub fn new(path_prefix: impl Into<String>, kind: FaultKind) -> Self {
        Self {
            method: None,
            path_prefix: path_prefix.into(),
            kind,
            times: 1,
        }
    }

    pub fn on(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && path.starts_with(&self.path_prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this status with a general-error body; nothing is committed.
    Status(u16),
    /// Wait, then behave normally.
    Latency(Duration),
    /// Never answer (until the simulator shuts down) and commit nothing.
    Timeout,
    /// Answer 429 as if the window were exhausted.
    RateLimit,
    /// Perform the request, then close the connection without a response.
    DropResponseAfterCommit,
}

/// Marks a response whose connection is aborted instead of answered (for the request log).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionAborted;

#[derive(Default)]
pub struct FaultQueue(Mutex<Vec<Fault>>);

impl FaultQueue {
    pub fn push(&self, fault: Fault) {
        if fault.times > 0 {
            self.0.lock().expect("fault queue poisoned").push(fault);
        }
    }

    /// Takes one use of the first queued fault matching the request.
    fn take(&self, method: &Method, path: &str) -> Option<FaultKind> {
        let mut queue = self.0.lock().expect("fault queue poisoned");
        let index = queue.iter().position(|f| f.matches(method, path))?;
        let fault = &mut queue[index];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            queue.remove(index);
        }
        Some(kind)
    }
}

/// Middleware in front of the API and OAuth routes.
pub async fn inject(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Layered inside the router nested under `/v1`, so the prefix is already gone here.
    let path = request.uri().path();
    let Some(kind) = state.faults.take(request.method(), path) else {
        return next.run(request).await;
    };
    tracing::info!(method = %request.method(), path, ?kind, "injecting fault");
    match kind {
        FaultKind::Status(code) => ApiError::general(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Simulated failure",
            "simulated_fault",
        )
        .into_response(),
        FaultKind::Latency(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        FaultKind::Timeout => {
            state.shutdown.cancelled().await;
            aborted_response()
        }
        FaultKind::RateLimit => rate_limit::too_many_requests(state.rate_limiter.exhausted()),
        FaultKind::DropResponseAfterCommit => {
            // The handler has committed by the time it returns; its answer is thrown away.
            drop(next.run(request).await);
            aborted_response()
        }
    }
}

/// A response whose body fails before the first byte: hyper then closes the connection
/// without sending even the status line, which the client sees as a connection error.
fn aborted_response() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("simulated connection drop"))
    });
    let mut response = Body::from_stream(failing).into_response();
    response.extensions_mut().insert(ConnectionAborted);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_method_and_prefix_and_counts_down() {
        let queue = FaultQueue::default();
        queue.push(
            Fault::new("/access_persons", FaultKind::Status(503))
                .on(Method::POST)
                .times(2),
        );
        assert_eq!(queue.take(&Method::GET, "/access_persons"), None);
        assert_eq!(queue.take(&Method::POST, "/devices"), None);
        assert_eq!(
            queue.take(&Method::POST, "/access_persons/1/accesses"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(
            queue.take(&Method::POST, "/access_persons"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(queue.take(&Method::POST, "/access_persons"), None);
    }
}
