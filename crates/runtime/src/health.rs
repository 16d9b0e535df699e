//! `/healthz` and `/readyz`, answered by every service without a token (design §3, contract).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Map, Value, json};

/// What a service is connected to (the database, maybe the broker), asked on every `/readyz`.
pub trait Connections: Clone + Send + Sync + 'static {
    /// Each connection by name, and whether it is up now.
    fn check(&self) -> impl Future<Output = Vec<(&'static str, bool)>> + Send;
    /// Closes what should be closed cleanly on the way out.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// The database, which `/metrics` reads the backlog from.
    fn database(&self) -> &sqlx::PgPool;
}

/// A condition of the service's own work beyond its connections (the LibCal connector: LibCal
/// answers and the last poll is recent), read without I/O.
pub type Probe = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
pub struct Readiness<C> {
    pub connections: C,
    /// False once a background task (consumer, relay, job worker) has died.
    pub working: Arc<AtomicBool>,
    pub probes: Vec<(&'static str, Probe)>,
}

pub fn router<S, C>(readiness: Readiness<C>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    C: Connections,
{
    Router::new()
        .route(
            "/healthz",
            get(|| async { (StatusCode::OK, axum::Json(json!({"status": "up"}))) }),
        )
        .route("/readyz", get(ready::<C>))
        .with_state(readiness)
}

async fn ready<C: Connections>(
    State(readiness): State<Readiness<C>>,
) -> (StatusCode, axum::Json<Value>) {
    let mut checks = readiness.connections.check().await;
    checks.push(("work", readiness.working.load(Ordering::SeqCst)));
    checks.extend(
        readiness
            .probes
            .iter()
            .map(|(name, probe)| (*name, probe())),
    );
    let status = if checks.iter().all(|(_, up)| *up) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body: Map<String, Value> = checks
        .into_iter()
        .map(|(name, up)| (name.to_owned(), Value::Bool(up)))
        .collect();
    (status, axum::Json(Value::Object(body)))
}
