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
use crate::keypad::{self, KeypadAnswer};
use crate::lock_state::{self, LockSnapshot};
use crate::pin_conflicts::PinCheck;
use crate::request_log::RequestRecord;
use crate::state::AppState;
use crate::tokens::TokenPair;
use crate::webhooks::{TlsRoute, WebhookAttempt};
use crate::{access_persons, device_sync, devices};

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
        .route("/_sim/access_persons/{id}/reactivate", post(reactivate))
        .route("/_sim/locks/{id}/deregister", post(deregister_lock))
        .route("/_sim/locks/{id}/live_guests", get(live_guests_on_lock))
        .route("/_sim/events", get(events))
        .route("/_sim/sync_failures", post(report_sync_failure))
        .route("/_sim/locks/{id}", get(lock_state_of))
        .route("/_sim/locks/{id}/pin", post(enter_pin))
        .route("/_sim/locks/{id}/connectivity", put(set_connected))
        .route("/_sim/locks/{id}/power", put(set_power_level))
        .route("/_sim/locks/{id}/fail_next_sync", post(fail_next_sync))
        .route("/_sim/webhooks/pause", post(pause_webhooks))
        .route("/_sim/webhooks/resume", post(resume_webhooks))
        .route("/_sim/webhooks/routes", post(add_webhook_route))
        .route("/_sim/webhooks/attempts", get(webhook_attempts))
}

type ControlResult<T> = Result<T, (StatusCode, String)>;

fn unknown_lock(id: Uuid) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("no lock {id}"))
}

fn bad_request(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, e.to_string())
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

/// 204 once the person is active again (as in RemoteLock's dashboard); 404 for no person.
async fn reactivate(State(state): State<AppState>, Path(id): Path<Uuid>) -> StatusCode {
    if access_persons::reactivate(&state, id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// 204 once the lock is out of the account (as `DELETE /devices/:id`); 404 for no lock.
async fn deregister_lock(State(state): State<AppState>, Path(id): Path<Uuid>) -> StatusCode {
    if devices::deregister(&state, id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
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
    let id = device_sync::report_sync_failure(
        &state,
        failure.person_id,
        failure.lock_id,
        &failure.status_info,
    )
    .ok_or(StatusCode::NOT_FOUND)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn lock_state_of(
    State(state): State<AppState>,
    Path(lock_id): Path<Uuid>,
) -> ControlResult<Json<LockSnapshot>> {
    let snapshot = state.directory().locks.snapshot(lock_id);
    snapshot.map(Json).ok_or_else(|| unknown_lock(lock_id))
}

/// `{"pin": "4821"}`: someone types it at the keypad.
#[derive(Debug, Deserialize)]
struct Keypress {
    pin: String,
}

async fn enter_pin(
    State(state): State<AppState>,
    Path(lock_id): Path<Uuid>,
    Json(keypress): Json<Keypress>,
) -> ControlResult<Json<KeypadAnswer>> {
    keypad::enter_pin(&state, lock_id, &keypress.pin)
        .map_err(bad_request)?
        .map(Json)
        .ok_or_else(|| unknown_lock(lock_id))
}

/// `{"connected": false}` → `{"event_id": "<connectivity event>" | null}`.
#[derive(Debug, Deserialize)]
struct Connectivity {
    connected: bool,
}

async fn set_connected(
    State(state): State<AppState>,
    Path(lock_id): Path<Uuid>,
    Json(connectivity): Json<Connectivity>,
) -> ControlResult<Json<Value>> {
    let event = lock_state::set_connected(&state, lock_id, connectivity.connected)
        .ok_or_else(|| unknown_lock(lock_id))?;
    Ok(Json(json!({ "event_id": event })))
}

/// `{"power_level": 12}` → `{"event_ids": [...]}`.
#[derive(Debug, Deserialize)]
struct Power {
    power_level: u16,
}

async fn set_power_level(
    State(state): State<AppState>,
    Path(lock_id): Path<Uuid>,
    Json(power): Json<Power>,
) -> ControlResult<Json<Value>> {
    let events = lock_state::set_power_level(&state, lock_id, power.power_level)
        .map_err(bad_request)?
        .ok_or_else(|| unknown_lock(lock_id))?;
    Ok(Json(json!({ "event_ids": events })))
}

/// `{"status_info": "timeout", "person_id": "<id>"}`; `person_id` optional (anyone).
#[derive(Debug, Deserialize)]
struct NextSyncFailure {
    person_id: Option<Uuid>,
    status_info: String,
}

async fn fail_next_sync(
    State(state): State<AppState>,
    Path(lock_id): Path<Uuid>,
    Json(failure): Json<NextSyncFailure>,
) -> ControlResult<StatusCode> {
    if failure.status_info.trim().is_empty() {
        return Err(bad_request("status_info must name the reason"));
    }
    if device_sync::fail_next_sync(&state, lock_id, failure.person_id, &failure.status_info) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err((StatusCode::NOT_FOUND, "no such lock or person".to_owned()))
    }
}

async fn pause_webhooks(State(state): State<AppState>) -> StatusCode {
    state.webhooks.pause();
    StatusCode::NO_CONTENT
}

async fn resume_webhooks(State(state): State<AppState>) -> StatusCode {
    state.webhooks.resume();
    StatusCode::NO_CONTENT
}

/// `{"route": "hooks.example=127.0.0.1:9000"}` (`HOST[:PORT]=ADDRESS:PORT`).
#[derive(Debug, Deserialize)]
struct Route {
    route: String,
}

async fn add_webhook_route(
    State(state): State<AppState>,
    Json(route): Json<Route>,
) -> ControlResult<StatusCode> {
    let route = TlsRoute::parse(&route.route).map_err(bad_request)?;
    state.webhooks.add_route(route);
    Ok(StatusCode::NO_CONTENT)
}

async fn webhook_attempts(State(state): State<AppState>) -> Json<Vec<WebhookAttempt>> {
    Json(state.webhooks.attempts())
}
