//! The RemoteLock authorization (design §1 step 1, §6): its state, the start of the OAuth
//! authorization-code flow, the browser's callback, and its removal once no link needs it.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use lockbridge_shared::{
    failures::{self, FailureKind},
    html, jobs,
    problem::Problem,
    provisioning,
    remotelock::{RemoteLockError, TokenSet},
    telemetry::error_chain,
};
use rand::{RngCore, rngs::OsRng};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::startup::AppState;

/// How long an admin has to approve at RemoteLock (RemoteLock's own codes live as long).
const STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// 256 bits: unguessable, so the callback can trust whoever presents it.
const STATE_BYTES: usize = 32;
/// Longer values cannot be ours (states) or RemoteLock's (codes); refused before any lookup.
const MAX_STATE_LEN: usize = 128;
const MAX_CODE_LEN: usize = 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/remotelock/authorization",
        get(show).post(start).delete(remove),
    )
}

pub(crate) fn callback_routes(path: &str) -> Router<AppState> {
    Router::new().route(path, get(callback))
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum AuthorizationState {
    Authorized,
    NotAuthorized,
}

#[derive(Serialize)]
struct AuthorizationView {
    state: AuthorizationState,
    account_name: Option<String>,
    account_id: Option<String>,
    authorized_at: Option<DateTime<Utc>>,
    access_expires_at: Option<DateTime<Utc>>,
    /// Spaces linked to a lock: the authorization can be removed only when this is 0.
    links: i64,
}

#[derive(sqlx::FromRow)]
struct StoredAuthorization {
    account_name: Option<String>,
    account_id: Option<String>,
    authorized_at: Option<DateTime<Utc>>,
    access_expires_at: Option<DateTime<Utc>>,
    links: i64,
}

async fn show(State(state): State<AppState>) -> Result<Json<AuthorizationView>, Problem> {
    // One row whether or not an authorization is stored.
    let stored: StoredAuthorization = sqlx::query_as(
        "SELECT a.account_name, a.account_id, a.authorized_at, a.access_expires_at,
                (SELECT count(*) FROM lock_links) AS links
         FROM (SELECT) AS one LEFT JOIN remotelock_authorization a ON TRUE",
    )
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(AuthorizationView {
        state: if stored.authorized_at.is_some() {
            AuthorizationState::Authorized
        } else {
            AuthorizationState::NotAuthorized
        },
        account_name: stored.account_name,
        account_id: stored.account_id,
        authorized_at: stored.authorized_at,
        access_expires_at: stored.access_expires_at,
        links: stored.links,
    }))
}

#[derive(Serialize)]
struct AuthorizationStart {
    authorize_url: String,
}

/// Remembers a fresh `state` and answers where to send the admin's browser.
async fn start(State(state): State<AppState>) -> Result<Json<AuthorizationStart>, Problem> {
    let mut bytes = [0u8; STATE_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let oauth_state = URL_SAFE_NO_PAD.encode(bytes);
    // Expired states are swept on the way, so abandoned attempts do not pile up.
    sqlx::query(
        "WITH swept AS (DELETE FROM oauth_states WHERE expires_at <= now())
         INSERT INTO oauth_states (state, expires_at)
         VALUES ($1, now() + make_interval(secs => $2))",
    )
    .bind(&oauth_state)
    .bind(STATE_LIFETIME.as_secs_f64())
    .execute(&state.pool)
    .await?;
    Ok(Json(AuthorizationStart {
        authorize_url: state.oauth.authorize_url(&oauth_state).into(),
    }))
}

/// Refused while links exist: they name locks of this account (the schema insists too).
async fn remove(State(state): State<AppState>) -> Result<StatusCode, Problem> {
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM lock_links")
        .fetch_one(&state.pool)
        .await?;
    if links > 0 {
        return Err(links_remain(links));
    }
    sqlx::query("DELETE FROM remotelock_authorization")
        .execute(&state.pool)
        .await
        .map_err(|error| match constraint(&error) {
            // A link made since the count.
            Some("lock_links_authorization_id_fkey") => links_remain(1),
            _ => error.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

fn links_remain(links: i64) -> Problem {
    Problem::conflict(
        "links",
        format!(
            "{links} space(s) are linked to RemoteLock locks: unlink them first \
             (DELETE /api/v1/links/{{space_id}})"
        ),
    )
}

pub(crate) fn constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error()?.constraint()
}

/// What RemoteLock appends to the redirect URL (RFC 6749 §4.1.2).
#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum CallbackError {
    #[error("the address is malformed")]
    Malformed(#[source] QueryRejection),
    #[error("this authorization link is unknown, has expired or was already used")]
    UnknownState,
    #[error("RemoteLock did not authorize lockbridge ({0})")]
    Denied(String),
    #[error("RemoteLock sent no authorization code")]
    NoCode,
    #[error("RemoteLock did not exchange the authorization code for tokens")]
    Exchange(#[source] RemoteLockError),
    #[error("the authorization cannot be stored")]
    Store(#[source] RemoteLockError),
    #[error("the database is unavailable")]
    Database(#[from] sqlx::Error),
}

impl CallbackError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Exchange(error) | Self::Store(error) if error.is_transient() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Exchange(RemoteLockError::TokenRefused { .. }) => StatusCode::BAD_REQUEST,
            Self::Exchange(_) => StatusCode::BAD_GATEWAY,
            Self::Store(_) | Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Malformed(_) | Self::UnknownState | Self::Denied(_) | Self::NoCode => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        let status = self.status();
        let chain = error_chain(&self);
        tracing::warn!(error = %chain, "RemoteLock authorization failed");
        let what = match self {
            // Internals stay in the log.
            Self::Store(_) | Self::Database(_) => self.to_string(),
            _ => chain,
        };
        page(
            status,
            "lockbridge was not authorized",
            &format!("{what}. Start again from lockbridge's admin."),
        )
    }
}

/// Where RemoteLock sends the admin's browser back: checks and spends the `state`, trades
/// the code for tokens, stores them encrypted, and records the account they act on.
async fn callback(
    State(state): State<AppState>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response, CallbackError> {
    let Query(query) = query.map_err(CallbackError::Malformed)?;
    let presented = query
        .state
        .filter(|s| s.len() <= MAX_STATE_LEN)
        .ok_or(CallbackError::UnknownState)?;
    if !consume_state(&state.pool, &presented).await? {
        return Err(CallbackError::UnknownState);
    }
    if let Some(error) = query.error {
        let reason = match query.error_description {
            Some(description) => format!("{error}: {description}"),
            None => error,
        };
        return Err(CallbackError::Denied(reason));
    }
    let code = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= MAX_CODE_LEN)
        .ok_or(CallbackError::NoCode)?;
    let tokens = state
        .oauth
        .exchange_code(&code)
        .await
        .map_err(CallbackError::Exchange)?;
    store(&state, &tokens).await
}

/// Spends the state: one statement, so two callbacks cannot both use it. An expired state is
/// spent as well.
async fn consume_state(pool: &PgPool, presented: &str) -> Result<bool, sqlx::Error> {
    let fresh: Option<bool> = sqlx::query_scalar(
        "DELETE FROM oauth_states WHERE state = $1 RETURNING expires_at > now()",
    )
    .bind(presented)
    .fetch_optional(pool)
    .await?;
    Ok(fresh == Some(true))
}

async fn store(state: &AppState, tokens: &TokenSet) -> Result<Response, CallbackError> {
    state
        .tokens
        .save(tokens, None, None)
        .await
        .map_err(CallbackError::Store)?;
    if let Err(error) = failures::resolve(&state.pool, FailureKind::Authorization, None).await {
        tracing::warn!(%error, "cannot mark the authorization failure resolved");
    }
    // Bookings that failed while lockbridge was not (or no longer) authorized get their PIN now,
    // and revocations waiting out the outage run at once.
    match jobs::retry_now(&state.pool, provisioning::QUEUE, jobs::Retrying::Failing).await {
        Ok(0) => {}
        Ok(retried) => tracing::info!(
            retried,
            "retrying bookings whose PIN failed before this authorization"
        ),
        Err(error) => tracing::warn!(%error, "cannot retry bookings whose PIN failed"),
    }
    // The tokens are stored and work; a missing account name only shows in the admin.
    let account = match state.remotelock.account().await {
        Ok(account) => account,
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "cannot read the RemoteLock account");
            return Ok(page(
                StatusCode::OK,
                "lockbridge is authorized",
                &format!(
                    "lockbridge can now use RemoteLock, but the account's name could not be \
                     read ({}). Authorize again later to show it.",
                    error_chain(&error)
                ),
            ));
        }
    };
    state
        .tokens
        .record_account(&account)
        .await
        .map_err(CallbackError::Store)?;
    tracing::info!(account_id = %account.id, "RemoteLock authorized");
    Ok(page(
        StatusCode::OK,
        "lockbridge is authorized",
        &format!(
            "lockbridge now manages guests in the RemoteLock account “{}”. You can close this \
             page.",
            account.name
        ),
    ))
}

/// A small page for the browser that RemoteLock redirected here.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         </head><body><h1>{title}</h1><p>{message}</p></body></html>\n",
        // The message may quote what RemoteLock (or whoever crafted the link) put in the query.
        title = html::escape(title),
        message = html::escape(message),
    );
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    // The address holds a spent code: keep it out of caches and other sites' logs.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    response
}
