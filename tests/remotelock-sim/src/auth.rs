//! Bearer tokens on every API request. A bad token gets the configured status (the docs say 403);
//! a good one tells the handlers which account it acts on ([`ActingAccount`]).

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::accounts::ActingAccount;
use crate::errors::ApiError;
use crate::state::AppState;
use crate::tokens::TokenRejection;

pub async fn require_bearer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let verdict = match token {
        Some(token) if !token.is_empty() => state.tokens.check(token),
        _ => Err(TokenRejection::Missing),
    };
    match verdict {
        Ok(account_id) => {
            request.extensions_mut().insert(ActingAccount(account_id));
            next.run(request).await
        }
        Err(rejection) => {
            let status = StatusCode::from_u16(state.config.bad_token_status)
                .unwrap_or(StatusCode::FORBIDDEN);
            let mut response =
                ApiError::general(status, rejection.message(), "invalid_token").into_response();
            let challenge = format!(
                r#"Bearer error="invalid_token", error_description="{}""#,
                rejection.message()
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}
