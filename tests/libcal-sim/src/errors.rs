//! Error bodies: `{"error": …}` as LibCal's endpoints answer (doc §6), OAuth-style pairs for
//! token problems (doc §1, §9.2).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::SimError;

/// A refused parameter; kept small (not a `Response`) so it travels cheaply in `Result`s.
#[derive(Debug)]
pub struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.0 });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

pub fn bad_request(message: impl Into<String>) -> BadRequest {
    BadRequest(message.into())
}

pub fn oauth(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body)).into_response()
}

pub fn invalid_token() -> Response {
    let description = "The access token provided is invalid or has expired";
    oauth(StatusCode::UNAUTHORIZED, "invalid_token", description)
}

/// A refused `/_sim` hook: 404 for unknown ids, 409 for a state that forbids the change.
pub fn hook(error: SimError) -> Response {
    let status = match error {
        SimError::NoLocation(_)
        | SimError::NoCategory(_)
        | SimError::NoSpace(_)
        | SimError::NoBooking(_)
        | SimError::NoRow(_) => StatusCode::NOT_FOUND,
        SimError::BadTransition { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(json!({ "error": error.to_string() }))).into_response()
}
