//! `/healthz` and `/readyz`, answered by every service without a token (design §3, contract).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use serde_json::json;
use sqlx::PgPool;

use crate::amqp::Broker;

#[derive(Clone)]
pub struct Readiness {
    pub pool: PgPool,
    pub broker: Broker,
    /// False once a background task (consumer, relay, job worker) has died.
    pub working: Arc<AtomicBool>,
}

pub fn router<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { (StatusCode::OK, axum::Json(json!({"status": "up"}))) }),
        )
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let database = sqlx::query("SELECT 1")
        .execute(&readiness.pool)
        .await
        .is_ok();
    let broker = readiness.broker.is_connected();
    let work = readiness.working.load(Ordering::SeqCst);
    let status = if database && broker && work {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"database": database, "broker": broker, "work": work})),
    )
}
