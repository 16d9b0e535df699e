//! The RemoteLock authorization (design §1 step 1, §6): its state, the start of the OAuth
//! authorization-code flow, the browser's callback, and its removal once no link needs it.
//! While spaces are linked, a new authorization must act on the account their locks belong
//! to: one for another account is refused and revoked, and the current one kept.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use lockbridge_http::{html, problem::Problem};
use lockbridge_remotelock::{Account, RemoteLockError, TokenManager, TokenSet};
use lockbridge_runtime::{jobs, telemetry::error_chain};
use lockbridge_work::{
    failures::{self, FailureKind},
    provisioning,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::{
    staff::sessions::{Notice, Session, random_token},
    startup::AppState,
    ui,
};

/// How long an admin has to approve at RemoteLock (RemoteLock's own codes live as long).
const STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);
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
pub(crate) struct StoredAuthorization {
    pub account_name: Option<String>,
    pub account_id: Option<String>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub access_expires_at: Option<DateTime<Utc>>,
    /// A refresh token is stored: the access token renews by itself.
    pub renewable: bool,
    pub links: i64,
}

/// The stored authorization (all `None` without one) and the number of links.
pub(crate) async fn stored(pool: &PgPool) -> Result<StoredAuthorization, sqlx::Error> {
    // One row whether or not an authorization is stored.
    sqlx::query_as(
        "SELECT a.account_name, a.account_id, a.authorized_at, a.access_expires_at,
                coalesce(a.refresh_token_enc IS NOT NULL, FALSE) AS renewable,
                (SELECT count(*) FROM lock_links) AS links
         FROM (SELECT) AS one LEFT JOIN remotelock_authorization a ON TRUE",
    )
    .fetch_one(pool)
    .await
}

async fn show(State(state): State<AppState>) -> Result<Json<AuthorizationView>, Problem> {
    let stored = stored(&state.pool).await?;
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

async fn start(State(state): State<AppState>) -> Result<Json<AuthorizationStart>, Problem> {
    Ok(Json(AuthorizationStart {
        authorize_url: begin(&state).await?.into(),
    }))
}

/// Remembers a fresh `state` and answers where to send the admin's browser.
pub(crate) async fn begin(state: &AppState) -> Result<url::Url, sqlx::Error> {
    // 256 bits: unguessable, so the callback can trust whoever presents it.
    let oauth_state = random_token();
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
    Ok(state.oauth.authorize_url(&oauth_state))
}

async fn remove(State(state): State<AppState>) -> Result<StatusCode, Problem> {
    remove_stored(&state.pool, &state.tokens).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refused while links exist: they name locks of this account (the schema insists too).
pub(crate) async fn remove_stored(pool: &PgPool, tokens: &TokenManager) -> Result<(), Problem> {
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM lock_links")
        .fetch_one(pool)
        .await?;
    if links > 0 {
        return Err(links_remain(links));
    }
    tokens
        .remove()
        .await
        .map_err(|error| match constraint(&error) {
            // A link made since the count.
            Some("lock_links_authorization_id_fkey") => links_remain(1),
            _ => error.into(),
        })?;
    tracing::info!("RemoteLock authorization removed");
    Ok(())
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
    #[error(
        "{links} space(s) are linked to locks of the RemoteLock account {linked}, but the \
         account {chosen} was chosen at RemoteLock. lockbridge keeps its authorization for \
         {linked}. Authorize again choosing {linked}, or, to switch accounts, first unlink \
         every space (DELETE /api/v1/links/{{space_id}})"
    )]
    OtherAccount {
        links: i64,
        linked: AccountLabel,
        chosen: AccountLabel,
    },
    #[error(
        "{links} space(s) are linked to locks of a RemoteLock account whose id lockbridge \
         never learned, so it cannot tell whether the chosen account {chosen} is that one. \
         lockbridge keeps its current authorization. To switch accounts, first unlink every \
         space (DELETE /api/v1/links/{{space_id}})"
    )]
    LinkedAccountUnknown { links: i64, chosen: AccountLabel },
    #[error(
        "RemoteLock did not say which account the new authorization acts on, and {links} \
         space(s) are linked to locks of the current one, so lockbridge keeps the current \
         authorization"
    )]
    ChosenAccountUnknown {
        links: i64,
        #[source]
        source: RemoteLockError,
    },
    #[error("the authorization cannot be stored")]
    Store(#[source] RemoteLockError),
    #[error("the database is unavailable")]
    Database(#[from] sqlx::Error),
}

/// An account as the pages name it: “name” (id).
#[derive(Debug)]
struct AccountLabel {
    id: String,
    name: String,
}

impl std::fmt::Display for AccountLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "“{}” ({})", self.name, self.id)
    }
}

impl From<&Account> for AccountLabel {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id.clone(),
            name: account.name.clone(),
        }
    }
}

impl CallbackError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Exchange(error)
            | Self::Store(error)
            | Self::ChosenAccountUnknown { source: error, .. }
                if error.is_transient() =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Exchange(RemoteLockError::TokenRefused { .. }) => StatusCode::BAD_REQUEST,
            Self::Exchange(_) | Self::ChosenAccountUnknown { .. } => StatusCode::BAD_GATEWAY,
            Self::OtherAccount { .. } | Self::LinkedAccountUnknown { .. } => StatusCode::CONFLICT,
            Self::Store(_) | Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Malformed(_) | Self::UnknownState | Self::Denied(_) | Self::NoCode => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    /// Refusals to replace a working authorization say that it still works.
    fn title(&self) -> &'static str {
        match self {
            Self::OtherAccount { .. }
            | Self::LinkedAccountUnknown { .. }
            | Self::ChosenAccountUnknown { .. } => "lockbridge kept its current authorization",
            _ => "lockbridge was not authorized",
        }
    }

    /// Logs the whole chain; answers what the admin is told (internals stay in the log).
    fn sentence(&self) -> String {
        let chain = error_chain(self);
        tracing::warn!(error = %chain, "RemoteLock authorization failed");
        match self {
            Self::Store(_) | Self::Database(_) => format!("{self}."),
            _ => format!("{chain}."),
        }
    }
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        let what = self.sentence();
        page(
            self.status(),
            self.title(),
            &format!("{what} Start again from lockbridge's admin."),
        )
    }
}

/// Where RemoteLock sends the admin's browser back. A browser signed in to the staff UI lands
/// on the Smart Locks page with the outcome; any other gets a small page saying it.
async fn callback(
    State(state): State<AppState>,
    session: Option<Session>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let outcome = complete(&state, query).await;
    let Some(session) = session else {
        return match outcome {
            Ok(message) => page(
                StatusCode::OK,
                "lockbridge is authorized",
                &format!("{message} You can close this page."),
            ),
            Err(error) => error.into_response(),
        };
    };
    let notice = match outcome {
        Ok(message) => Notice::done(message),
        Err(error) => Notice::failed(format!("{}: {}", error.title(), error.sentence())),
    };
    let landing = ui::land_with_notice(&state.pool, &session, &notice).await;
    // Back to the Smart Locks page, leaving the address with the spent code behind.
    with_private_headers(landing.into_response())
}

/// Checks and spends the `state`, trades the code for tokens, asks which account they act
/// on, and stores them encrypted with that account, unless links name locks of another one
/// (then they are revoked instead). Answers the sentence for the admin.
async fn complete(
    state: &AppState,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<String, CallbackError> {
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
    // Asked before anything is stored: with links, the account decides whether to keep them.
    let chosen = state.staff_calls().account_for(&tokens).await;
    let chosen = match keep(state, &tokens, chosen).await {
        Ok(chosen) => chosen,
        Err(refusal) => {
            discard(state, &tokens).await;
            return Err(refusal);
        }
    };
    resume_after_authorization(state).await;
    Ok(authorized(chosen))
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

/// The stored authorization, as far as a new one must respect it.
struct Current {
    account_id: Option<String>,
    account_name: Option<String>,
    links: i64,
}

/// Stores `tokens` unless links name locks of another account than the one they act on;
/// answers `chosen` back for the page. The authorization's row stays locked until the new
/// tokens are stored: a link made meanwhile (its foreign key takes a share lock on the row)
/// waits for this decision, and is then made with the new authorization.
async fn keep(
    state: &AppState,
    tokens: &TokenSet,
    chosen: Result<Account, RemoteLockError>,
) -> Result<Result<Account, RemoteLockError>, CallbackError> {
    let mut tx = state.pool.begin().await?;
    let current = current_authorization(&mut tx).await?;
    let chosen = same_account(&current, chosen)?;
    let account = chosen.as_ref().ok();
    state
        .tokens
        .save_in(
            &mut tx,
            tokens,
            account.map(|a| a.id.as_str()),
            account.map(|a| a.name.as_str()),
        )
        .await
        .map_err(CallbackError::Store)?;
    tx.commit().await?;
    Ok(chosen)
}

/// Locks the stored authorization's row (if any) and counts the links hanging off it.
async fn current_authorization(db: &mut PgConnection) -> Result<Current, sqlx::Error> {
    let stored: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT account_id, account_name FROM remotelock_authorization FOR UPDATE")
            .fetch_optional(&mut *db)
            .await?;
    let (account_id, account_name) = stored.unwrap_or_default();
    let links = sqlx::query_scalar("SELECT count(*) FROM lock_links")
        .fetch_one(&mut *db)
        .await?;
    Ok(Current {
        account_id,
        account_name,
        links,
    })
}

/// Without links any account will do, even one RemoteLock did not name. With links, only
/// the account they were made in: otherwise they would name locks lockbridge no longer acts
/// on, and cancelled bookings' guests could never be deactivated.
fn same_account(
    current: &Current,
    chosen: Result<Account, RemoteLockError>,
) -> Result<Result<Account, RemoteLockError>, CallbackError> {
    let links = current.links;
    if links == 0 {
        return Ok(chosen);
    }
    let chosen = chosen.map_err(|source| CallbackError::ChosenAccountUnknown { links, source })?;
    match &current.account_id {
        Some(linked) if *linked == chosen.id => Ok(Ok(chosen)),
        Some(linked) => Err(CallbackError::OtherAccount {
            links,
            linked: AccountLabel {
                id: linked.clone(),
                name: current.account_name.clone().unwrap_or_default(),
            },
            chosen: AccountLabel::from(&chosen),
        }),
        None => Err(CallbackError::LinkedAccountUnknown {
            links,
            chosen: AccountLabel::from(&chosen),
        }),
    }
}

/// Tokens lockbridge does not keep should not stay usable at RemoteLock. Best effort: the
/// admin's page says why they were not kept either way.
async fn discard(state: &AppState, tokens: &TokenSet) {
    if let Err(error) = state.remotelock.revoke(tokens).await {
        tracing::warn!(
            error = %error_chain(&error),
            "cannot revoke the RemoteLock tokens that were not kept"
        );
    }
}

/// What waited for an authorization runs now: the authorization failure is resolved,
/// bookings that failed while lockbridge was not (or no longer) authorized get their PIN, and
/// revocations waiting out the outage run at once.
async fn resume_after_authorization(state: &AppState) {
    if let Err(error) = failures::resolve(&state.pool, FailureKind::Authorization, None).await {
        tracing::warn!(%error, "cannot mark the authorization failure resolved");
    }
    match jobs::retry_now(&state.pool, provisioning::QUEUE, jobs::Retrying::Failing).await {
        Ok(0) => {}
        Ok(retried) => tracing::info!(
            retried,
            "retrying bookings whose PIN failed before this authorization"
        ),
        Err(error) => tracing::warn!(%error, "cannot retry bookings whose PIN failed"),
    }
}

/// The tokens are stored and work; a missing account name only shows in the admin.
fn authorized(chosen: Result<Account, RemoteLockError>) -> String {
    match chosen {
        Ok(account) => {
            tracing::info!(account_id = %account.id, "RemoteLock authorized");
            format!(
                "lockbridge now manages guests in the RemoteLock account “{}”.",
                account.name
            )
        }
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "cannot read the RemoteLock account");
            format!(
                "lockbridge can now use RemoteLock, but the account's name could not be read \
                 ({}). Authorize again later to show it.",
                error_chain(&error)
            )
        }
    }
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
    let mut response = with_private_headers((status, Html(body)).into_response());
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    response
}

/// The address holds a spent code: keep it out of caches and other sites' logs.
fn with_private_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
