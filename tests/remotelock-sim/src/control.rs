//! Test controls over HTTP for the binary (no auth): `/_sim/...`, mirroring `SimHandle`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::catalog::Seed;
use crate::directory::{AccessSnapshot, GuestSnapshot};
use crate::events::EventSnapshot;
use crate::faults::{Fault, FaultKind};
use crate::pin_conflicts::PinCheck;
use crate::request_log::RequestRecord;
use crate::state::AppState;
use crate::tokens::TokenPair;

pub const PREFIX: &str = "/_sim";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/state", get(snapshot))
        .route("/_sim/requests", get(requests))
        .route("/_sim/faults", post(inject_fault))
        .route("/_sim/tokens", post(mint_tokens))
        .route("/_sim/accounts", post(add_account))
        .route("/_sim/accounts/approving", put(approve_as))
        .route("/_sim/tokens/expire", post(expire_tokens))
        .route("/_sim/pins/refuse", post(refuse_pins))
        .route("/_sim/access_users", post(add_access_user))
        .route("/_sim/locks/{id}/live_guests", get(live_guests_on_lock))
        .route("/_sim/events", get(events))
        .route("/_sim/sync_failures", post(report_sync_failure))
}

#[derive(Serialize)]
struct StateView {
    #[serde(flatten)]
    seed: Seed,
    guests: Vec<GuestSnapshot>,
    accesses: Vec<AccessSnapshot>,
}

async fn snapshot(State(state): State<AppState>) -> Json<StateView> {
    Json(StateView {
        seed: state.catalog.seed(),
        guests: state.guests(),
        accesses: state.accesses(),
    })
}

async fn requests(State(state): State<AppState>) -> Json<Vec<RequestRecord>> {
    Json(state.requests.snapshot())
}

/// JSON form of a [`Fault`], e.g.
/// `{"method": "POST", "path_prefix": "/access_persons", "kind": "status", "status": 503, "times": 2}`;
/// other kinds: `{"kind": "latency", "latency_ms": 1500}`, `"timeout"`, `"rate_limit"`,
/// `"drop_response_after_commit"`.
#[derive(Debug, Deserialize)]
struct FaultSpec {
    method: Option<String>,
    path_prefix: String,
    #[serde(default = "once")]
    times: u32,
    #[serde(flatten)]
    kind: FaultKindSpec,
}

fn once() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FaultKindSpec {
    Status { status: u16 },
    Latency { latency_ms: u64 },
    Timeout,
    RateLimit,
    DropResponseAfterCommit,
}

impl From<FaultKindSpec> for FaultKind {
    fn from(spec: FaultKindSpec) -> Self {
        match spec {
            FaultKindSpec::Status { status } => Self::Status(status),
            FaultKindSpec::Latency { latency_ms } => {
                Self::Latency(Duration::from_millis(latency_ms))
            }
            FaultKindSpec::Timeout => Self::Timeout,
            FaultKindSpec::RateLimit => Self::RateLimit,
            FaultKindSpec::DropResponseAfterCommit => Self::DropResponseAfterCommit,
        }
    }
}

async fn inject_fault(
    State(state): State<AppState>,
    Json(spec): Json<FaultSpec>,
) -> Result<StatusCode, (StatusCode, String)> {
    let method = spec
        .method
        .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
        .transpose()
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("method: {e}")))?;
    state.faults.push(Fault {
        method,
        path_prefix: spec.path_prefix,
        kind: spec.kind.into(),
        times: spec.times,
    });
    Ok(StatusCode::NO_CONTENT)
}

async fn mint_tokens(State(state): State<AppState>) -> (StatusCode, Json<TokenPair>) {
    let seeded = state.accounts.seeded().id;
    (StatusCode::CREATED, Json(state.tokens.issue_pair(seeded)))
}

/// `{"name": "Riverside Schools"}` → 201 `{"id"}`: an empty account of the same user.
#[derive(Debug, Deserialize)]
struct NewAccount {
    name: String,
}

async fn add_account(
    State(state): State<AppState>,
    Json(account): Json<NewAccount>,
) -> (StatusCode, Json<Value>) {
    let id = state.accounts.add(&account.name);
    (StatusCode::CREATED, Json(json!({ "id": id })))
}

/// `{"account_id": "..."}`: the account the authorize page picks from now on; 404 for an
/// unknown id.
#[derive(Debug, Deserialize)]
struct Approving {
    account_id: Uuid,
}

async fn approve_as(
    State(state): State<AppState>,
    Json(approving): Json<Approving>,
) -> Result<StatusCode, (StatusCode, String)> {
    state
        .accounts
        .approve_as(approving.account_id)
        .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_tokens(State(state): State<AppState>) -> StatusCode {
    state.tokens.expire_access_tokens();
    StatusCode::NO_CONTENT
}

/// `{"count": 2, "at": "grant"}`; `at` is `create`, `update` or `grant`.
#[derive(Debug, Deserialize)]
struct RefusePins {
    count: u32,
    at: PinCheck,
}

async fn refuse_pins(State(state): State<AppState>, Json(spec): Json<RefusePins>) -> StatusCode {
    state.pin_refusals.add(spec.count, spec.at);
    StatusCode::NO_CONTENT
}

/// `{"name": "Facilities", "pin": "4711", "lock_id": "<seeded lock id>"}`; `lock_id` optional.
#[derive(Debug, Deserialize)]
struct OutsideUser {
    name: String,
    pin: String,
    lock_id: Option<Uuid>,
}

async fn add_access_user(
    State(state): State<AppState>,
    Json(user): Json<OutsideUser>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let id = state
        .add_access_user(&user.name, &user.pin, user.lock_id)
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn live_guests_on_lock(
    State(state): State<AppState>,
    Path(lock_id): Path<Uuid>,
) -> Json<Vec<GuestSnapshot>> {
    Json(state.live_guests_on_lock(lock_id))
}

async fn events(State(state): State<AppState>) -> Json<Vec<EventSnapshot>> {
    Json(state.events())
}

/// `{"person_id": "<id>", "lock_id": "<seeded lock id>", "status_info": "timeout"}`.
#[derive(Debug, Deserialize)]
struct SyncFailure {
    person_id: Uuid,
    lock_id: Uuid,
    status_info: String,
}

/// 201 `{"id": "<event id>"}`; 404 unless the person exists and reaches the lock.
async fn report_sync_failure(
    State(state): State<AppState>,
    Json(failure): Json<SyncFailure>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let id = state
        .report_sync_failure(failure.person_id, failure.lock_id, &failure.status_info)
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}
