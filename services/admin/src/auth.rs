//! The JSON API's single bearer token (`admin.api_token`), compared in constant time.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::Response,
};
use lockbridge_shared::problem::Problem;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub(crate) struct ApiToken(SecretString);

impl ApiToken {
    /// `None` for an empty token: it would let in any request with an empty bearer.
    pub fn new(token: SecretString) -> Option<Self> {
        (!token.expose_secret().trim().is_empty()).then_some(Self(token))
    }

    /// Timing reveals at most the token's length, never how much of it was right.
    fn matches(&self, presented: &str) -> bool {
        self.0
            .expose_secret()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

pub(crate) async fn require_api_token(
    State(token): State<Arc<ApiToken>>,
    request: Request,
    next: Next,
) -> Result<Response, Problem> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
        .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <admin.api_token>"))?;
    if !token.matches(presented) {
        return Err(Problem::unauthorized(
            "the bearer token is not the admin API token",
        ));
    }
    Ok(next.run(request).await)
}
