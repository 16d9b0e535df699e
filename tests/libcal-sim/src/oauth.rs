//! `POST {prefix}/oauth/token`: client credentials, as a form or as JSON (doc §1).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::errors;
use crate::router::AppState;

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let fields = if is_json {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect(),
            _ => return invalid_request("the body is not a JSON object"),
        }
    } else {
        url::form_urlencoded::parse(&body)
            .into_owned()
            .collect::<Vec<_>>()
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(grant), Some(id), Some(secret)) = (
        field("grant_type"),
        field("client_id"),
        field("client_secret"),
    ) else {
        return invalid_request("grant_type, client_id and client_secret are required");
    };
    if grant != "client_credentials" {
        let description = "Only client_credentials is supported";
        return errors::oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        );
    }
    if id != state.config.client_id || secret != state.config.client_secret {
        let description = "The client credentials are invalid";
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_client", description);
    }
    let body = json!({
        "access_token": state.tokens.issue(),
        "expires_in": state.tokens.ttl().as_secs(),
        "token_type": "Bearer",
        "scope": state.config.scope,
    });
    Json(body).into_response()
}

fn invalid_request(description: &str) -> Response {
    errors::oauth(StatusCode::BAD_REQUEST, "invalid_request", description)
}
