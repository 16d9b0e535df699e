//! The JSON API's single bearer token (`admin.api_token`), compared in constant time.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use lockbridge_http::{
    auth::{bearer_token, token_matches},
    problem::Problem,
};
use secrecy::{ExposeSecret, SecretString};

pub(crate) struct ApiToken(SecretString);

impl ApiToken {
    /// `None` for an empty token: it would let in any request with an empty bearer.
    pub fn new(token: SecretString) -> Option<Self> {
        (!token.expose_secret().trim().is_empty()).then_some(Self(token))
    }
}

pub(crate) async fn require_api_token(
    State(token): State<Arc<ApiToken>>,
    request: Request,
    next: Next,
) -> Result<Response, Problem> {
    let presented = bearer_token(request.headers())
        .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <admin.api_token>"))?;
    if !token_matches(&token.0, presented) {
        return Err(Problem::unauthorized(
            "the bearer token is not the admin API token",
        ));
    }
    Ok(next.run(request).await)
}
