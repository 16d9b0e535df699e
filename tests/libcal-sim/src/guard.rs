//! In front of every API endpoint: injected faults first (they stand for the server or the
//! network, not for the request), then the bearer token and its scope.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::errors;
use crate::faults::FaultKind;
use crate::router::AppState;

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.faults.take(request.uri().path()) {
        Some(FaultKind::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(json!({ "error": "simulated fault" }))).into_response();
        }
        Some(FaultKind::Delay { delay_ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
        Some(FaultKind::EmptyList) => return Json(json!([])).into_response(),
        Some(FaultKind::Unauthorized) => {
            state.tokens.revoke_all();
            return errors::invalid_token();
        }
        None => {}
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|token| state.tokens.is_live(token.trim())) {
        return errors::invalid_token();
    }
    // Tokens carry the application's scope; every endpoint here reads spaces (doc §9.2).
    if !state
        .config
        .scope
        .split_whitespace()
        .any(|code| code == "sp_r")
    {
        let description = "The token lacks the sp_r (Spaces - Read) scope";
        return errors::oauth(StatusCode::FORBIDDEN, "insufficient_scope", description);
    }
    next.run(request).await
}
