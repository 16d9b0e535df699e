//! `/_sim/...`: the `SimHandle` hooks over HTTP, for the binary (no auth, not logged).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::json;

use crate::errors;
use crate::faults::Fault;
use crate::model::CancelledBy;
use crate::request_log::RequestRecord;
use crate::router::AppState;
use crate::state::{NewBooking, NewSpace, RowEdit, SimError};

#[derive(Deserialize)]
pub struct NewLocation {
    name: String,
    time_zone: Tz,
}

#[derive(Deserialize)]
pub struct NewCategory {
    lid: u32,
    name: String,
}

#[derive(Deserialize)]
pub struct SpaceIn {
    cid: u32,
    #[serde(flatten)]
    space: NewSpace,
}

#[derive(Deserialize)]
pub struct NewSeat {
    space_id: u32,
    name: String,
}

fn created(result: Result<u32, SimError>) -> Response {
    match result {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => errors::hook(e),
    }
}

fn done(result: Result<(), SimError>) -> Response {
    result.map_or_else(errors::hook, |()| StatusCode::NO_CONTENT.into_response())
}

pub async fn location(State(state): State<AppState>, Json(body): Json<NewLocation>) -> Response {
    created(Ok(state.add_location(&body.name, body.time_zone)))
}

pub async fn category(State(state): State<AppState>, Json(body): Json<NewCategory>) -> Response {
    created(state.add_category(body.lid, &body.name))
}

pub async fn space(State(state): State<AppState>, Json(body): Json<SpaceIn>) -> Response {
    created(state.add_space(body.cid, body.space))
}

pub async fn seat(State(state): State<AppState>, Json(body): Json<NewSeat>) -> Response {
    created(state.add_seat(body.space_id, &body.name))
}

pub async fn booking(State(state): State<AppState>, Json(body): Json<NewBooking>) -> Response {
    match state.book(body) {
        Ok(booking) => (StatusCode::CREATED, Json(booking)).into_response(),
        Err(e) => errors::hook(e),
    }
}

/// `confirm`, `approve`, `deny`, `cancel-user`, `cancel-admin`, `cancel-system`, `delete`.
pub async fn transition(
    State(state): State<AppState>,
    Path((book_id, action)): Path<(String, String)>,
) -> Response {
    let result = match action.as_str() {
        "confirm" => state.confirm(&book_id),
        "approve" => state.approve(&book_id),
        "deny" => state.deny(&book_id),
        "cancel-user" => state.cancel(&book_id, CancelledBy::User),
        "cancel-admin" => state.cancel(&book_id, CancelledBy::Admin),
        "cancel-system" => state.cancel(&book_id, CancelledBy::System),
        "delete" => state.delete(&book_id),
        other => {
            let error = format!("unknown action {other:?}");
            return (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response();
        }
    };
    done(result)
}

pub async fn edit_row(
    State(state): State<AppState>,
    Path(row_id): Path<u64>,
    Json(edit): Json<RowEdit>,
) -> Response {
    done(state.edit_row(row_id, edit))
}

pub async fn fault(State(state): State<AppState>, Json(fault): Json<Fault>) -> StatusCode {
    state.faults.push(fault);
    StatusCode::NO_CONTENT
}

pub async fn requests(State(state): State<AppState>) -> Json<Vec<RequestRecord>> {
    Json(state.requests.snapshot())
}

pub async fn revoke_tokens(State(state): State<AppState>) -> StatusCode {
    state.tokens.revoke_all();
    StatusCode::NO_CONTENT
}
