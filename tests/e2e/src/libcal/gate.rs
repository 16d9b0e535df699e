//! A pass-through in front of booking-intake for the LibCal connector: it counts what the
//! connector writes (no write loops), and can stand for an intake that is down (503) for a
//! while, or down after a few more writes (a restart in the middle of sending).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use tokio_util::sync::{CancellationToken, DropGuard};

/// One request the connector made to intake, and what it got.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub at: DateTime<Utc>,
}

/// Which requests reach intake.
#[derive(Debug, Clone, Copy)]
enum Passing {
    All,
    Only(usize),
}

struct Gate {
    intake: SocketAddr,
    http: reqwest::Client,
    passing: Mutex<Passing>,
    log: Mutex<Vec<Forwarded>>,
}

pub struct IntakeGate {
    pub addr: SocketAddr,
    gate: Arc<Gate>,
    _serving: DropGuard,
}

impl IntakeGate {
    /// Serves on a free loopback port in front of the intake at `intake`, open.
    pub async fn start(intake: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the gate");
        let addr = listener.local_addr().expect("bound");
        let gate = Arc::new(Gate {
            intake,
            http: reqwest::Client::new(),
            passing: Mutex::new(Passing::All),
            log: Mutex::default(),
        });
        let stop = CancellationToken::new();
        let app = Router::new().fallback(forward).with_state(gate.clone());
        let serving =
            axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move { serving.await.expect("the gate serves") });
        Self {
            addr,
            gate,
            _serving: stop.drop_guard(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Every request answers 503 from now on, as an intake that is down.
    pub fn close(&self) {
        self.pass_only(0);
    }

    /// `count` more requests reach intake, the rest answer 503.
    pub fn pass_only(&self, count: usize) {
        *self.gate.passing.lock().expect("gate") = Passing::Only(count);
    }

    pub fn open(&self) {
        *self.gate.passing.lock().expect("gate") = Passing::All;
    }

    /// What the connector asked of intake so far, oldest first.
    pub fn log(&self) -> Vec<Forwarded> {
        self.gate.log.lock().expect("gate log").clone()
    }

    /// The connector's writes of `booking_id`, oldest first.
    pub fn writes(&self, booking_id: &str) -> Vec<Forwarded> {
        let path = format!("/v1/bookings/{booking_id}");
        let mut log = self.log();
        log.retain(|f| f.method == Method::PUT && f.path == path);
        log
    }

    /// When intake accepted a write of `booking_id`, oldest first.
    pub fn accepted_writes(&self, booking_id: &str) -> Vec<DateTime<Utc>> {
        let writes = self.writes(booking_id).into_iter();
        writes
            .filter(|f| f.status.is_success())
            .map(|f| f.at)
            .collect()
    }
}

impl Gate {
    /// Whether this request may pass, using up one of a limited number.
    fn lets_through(&self) -> bool {
        let mut passing = self.passing.lock().expect("gate");
        match *passing {
            Passing::All => true,
            Passing::Only(0) => false,
            Passing::Only(left) => {
                *passing = Passing::Only(left - 1);
                true
            }
        }
    }

    async fn send(&self, method: Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.intake))
            .body(body);
        for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        let Ok(answer) = request.send().await else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        let status = answer.status();
        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
        let body = answer.bytes().await.unwrap_or_default();
        let mut response = (status, body).into_response();
        if let Some(content_type) = content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        response
    }
}

async fn forward(
    State(gate): State<Arc<Gate>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Utc::now();
    let response = if gate.lets_through() {
        gate.send(method.clone(), &uri, &headers, body).await
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/problem+json")],
            r#"{"title":"booking-intake is down (test gate)","status":503}"#,
        )
            .into_response()
    };
    gate.log.lock().expect("gate log").push(Forwarded {
        method,
        path: uri.path().to_owned(),
        status: response.status(),
        at,
    });
    response
}
