//! The session as handlers receive it: read from the cookie, and for a form POST checked
//! against the form's CSRF token before the form is read.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request},
    http::{HeaderMap, HeaderValue, header, request::Parts},
};
use lockbridge_http::auth::token_matches;
use secrecy::SecretString;
use serde::{Deserialize, de::DeserializeOwned};

use super::page::UiError;
use crate::{
    staff::{
        Role,
        sessions::{self, SESSION_LIFETIME, Session, SessionToken},
    },
    startup::AppState,
};

const SESSION_COOKIE: &str = "lockbridge_session";

/// The value of the cookie `name`, if the request has it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name && !value.is_empty()).then_some(value)
        })
}

/// A `Set-Cookie` value: never readable by scripts, never sent by other sites' forms.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: u64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("cookie values are URL-safe base64")
}

pub(crate) fn session_cookie(token: &SessionToken, secure: bool) -> HeaderValue {
    set_cookie(
        SESSION_COOKIE,
        token.expose(),
        "/",
        SESSION_LIFETIME.as_secs(),
        secure,
    )
}

pub(crate) fn cleared_session_cookie(secure: bool) -> HeaderValue {
    set_cookie(SESSION_COOKIE, "", "/", 0, secure)
}

async fn live_session(parts: &Parts, state: &AppState) -> Result<Option<Session>, UiError> {
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(sessions::find(&state.pool, &SessionToken::presented(token)).await?)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        live_session(parts, state)
            .await?
            .ok_or(UiError::SignInNeeded)
    }
}

impl OptionalFromRequestParts<AppState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, UiError> {
        live_session(parts, state).await
    }
}

impl Session {
    /// Admin pages answer staff accounts with a sentence.
    pub fn require_admin(&self) -> Result<(), UiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Staff => Err(UiError::AdminsOnly),
        }
    }
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: String,
}

/// A form that is only a button: its CSRF token is all it carries.
#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// A form POSTed by a signed-in browser, its `csrf` field the session's token.
pub(crate) struct Posted<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, UiError> {
        let (mut parts, body) = request.into_parts();
        let session =
            <Session as FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| UiError::BadForm(rejection.body_text()))?;
        let presented = serde_urlencoded::from_bytes::<CsrfField>(&body)
            .map_err(|_| UiError::CsrfRefused)?
            .csrf;
        if !token_matches(&SecretString::from(session.csrf_token.clone()), &presented) {
            tracing::warn!("a staff form was posted without its session's CSRF token");
            return Err(UiError::CsrfRefused);
        }
        let form = serde_urlencoded::from_bytes(&body)
            .map_err(|error| UiError::BadForm(format!("the form is incomplete ({error})")))?;
        Ok(Self { session, form })
    }
}
