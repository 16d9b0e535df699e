//! `Content-Type: application/json` is required on POST/PUT/PATCH (remotelock-api.md §1.3).
//! Checked for every write in front of the handlers, not where a body is read: otherwise a
//! bodiless action such as `PUT /access_persons/:id/deactivate` would let a client that
//! forgets the header pass here and fail against the real API.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Axum's default body limit for extractors.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A write's body, parsed once here and handed to [`crate::envelope::RequestBody`].
#[derive(Debug, Clone)]
pub struct JsonObject(pub Map<String, Value>);

/// Middleware on the API routes. What the real API answers is undocumented; we choose 415
/// for another media type (parameters such as `charset` are fine) and 400 for a body that
/// is missing, malformed or not a JSON object. Other methods ignore the body.
pub async fn require(request: Request, next: Next) -> Response {
    if !matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    ) {
        return next.run(request).await;
    }
    if !is_json(request.headers()) {
        return ApiError::general(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            "unsupported_media_type",
        )
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => return ApiError::bad_request(format!("Unreadable body: {e}")).into_response(),
    };
    let root = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(root)) => root,
        Ok(_) => return not_an_object(),
        Err(_) if bytes.trim_ascii().is_empty() => return not_an_object(),
        Err(e) => return ApiError::bad_request(format!("Malformed JSON: {e}")).into_response(),
    };
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(JsonObject(root));
    next.run(request).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn not_an_object() -> Response {
    ApiError::bad_request("The request body must be a JSON object").into_response()
}
