//! Signing in and out. The sign-in form has no session yet, so its CSRF token is a random
//! value both in a cookie and in the form (double submit): another site's form cannot read it.

use std::net::SocketAddr;

use askama::Template;
use axum::{
    Form, Router,
    extract::{
        ConnectInfo, Query, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    page::{UiError, render},
    session::{NoFields, Posted, cleared_session_cookie, cookie, session_cookie, set_cookie},
};
use crate::{
    staff::{
        sessions::random_token,
        sign_in::{self, SignIn},
    },
    startup::AppState,
};

const SIGN_IN_COOKIE: &str = "lockbridge_sign_in";
/// The sign-in form works this long after it was shown.
const SIGN_IN_FORM_SECS: u64 = 60 * 60;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(form).post(submit))
        .route("/sign-out", post(sign_out))
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf_token: String,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct Shown {
    signed_out: Option<String>,
}

async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    shown: Result<Query<Shown>, QueryRejection>,
) -> Response {
    let signed_out = shown.is_ok_and(|Query(shown)| shown.signed_out.is_some());
    answer(
        &state,
        &headers,
        StatusCode::OK,
        SignInPage {
            csrf_token: String::new(),
            email: String::new(),
            error: None,
            notice: signed_out.then_some("You are signed out."),
        },
    )
}

/// Renders the form with the browser's sign-in token (a fresh one if it has none).
fn answer(state: &AppState, headers: &HeaderMap, status: StatusCode, page: SignInPage) -> Response {
    let token = cookie(headers, SIGN_IN_COOKIE).map_or_else(random_token, str::to_owned);
    let page = SignInPage {
        csrf_token: token.clone(),
        ..page
    };
    let mut response = render(status, &page);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SIGN_IN_COOKIE,
            &token,
            "/sign-in",
            SIGN_IN_FORM_SECS,
            state.ui.cookie_secure,
        ),
    );
    response
}

#[derive(Deserialize)]
struct Credentials {
    csrf: String,
    email: String,
    password: SecretString,
}

async fn submit(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    credentials: Result<Form<Credentials>, FormRejection>,
) -> Result<Response, UiError> {
    let Form(credentials) = credentials.map_err(|_| {
        UiError::BadForm(
            "the sign-in form is incomplete: fill in the email and the password".into(),
        )
    })?;
    let expected = cookie(&headers, SIGN_IN_COOKIE);
    if expected.is_none_or(|token| token != credentials.csrf) {
        return Err(UiError::CsrfRefused);
    }
    let refused = |status, error: String| {
        let page = SignInPage {
            csrf_token: String::new(),
            email: credentials.email.clone(),
            error: Some(error),
            notice: None,
        };
        Ok(answer(&state, &headers, status, page))
    };
    match sign_in::sign_in(
        &state.pool,
        &credentials.email,
        &credentials.password,
        client.ip(),
    )
    .await?
    {
        SignIn::Started(token) => {
            let mut response = Redirect::to("/").into_response();
            let headers = response.headers_mut();
            let secure = state.ui.cookie_secure;
            headers.append(header::SET_COOKIE, session_cookie(&token, secure));
            headers.append(
                header::SET_COOKIE,
                set_cookie(SIGN_IN_COOKIE, "", "/sign-in", 0, secure),
            );
            Ok(response)
        }
        SignIn::Refused => refused(
            StatusCode::UNAUTHORIZED,
            "The email or the password is not right.".to_owned(),
        ),
        SignIn::LockedOut { until } => {
            let minutes = ((until - Utc::now()).num_seconds().max(1) + 59) / 60;
            refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins for this account or from this address: try again \
                     in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                ),
            )
        }
    }
}

async fn sign_out(
    State(state): State<AppState>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    posted.session.end(&state.pool).await?;
    let mut response = Redirect::to("/sign-in?signed_out=1").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cleared_session_cookie(state.ui.cookie_secure),
    );
    Ok(response)
}
