//! The staff web UI (issue 8): server-rendered pages (askama templates in
//! services/admin/templates), signed in with a staff account's session. Every form POST
//! carries the session's CSRF token; pages work without JavaScript, and one small script
//! filters the link form's lists in place.

mod activity;
mod bookings;
mod failures;
mod locks;
mod page;
mod reports;
mod session;
mod settings;
mod sign_in;
mod smart_locks;
mod unlink;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use lockbridge_http::problem::Problem;
use sqlx::PgPool;
use url::Url;

use crate::{
    staff::sessions::{Notice, Session},
    startup::AppState,
};

/// The paths the UI serves: the OAuth callback (`remotelock.redirect_url`) must keep clear.
pub(crate) fn serves(path: &str) -> bool {
    [
        "/",
        "/sign-in",
        "/sign-out",
        "/links",
        "/bookings",
        "/locks",
        "/failures",
        "/settings",
        "/reports",
        "/remotelock/authorize",
    ]
    .contains(&path)
        || [
            "/links/",
            "/bookings/",
            "/failures/",
            "/settings/",
            "/reports/",
            "/static/",
            "/remotelock/authorization/",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// How the UI's pages are served.
#[derive(Clone)]
pub(crate) struct UiSettings {
    /// The session cookie is `Secure` (`admin.cookie_secure`).
    pub cookie_secure: bool,
    content_security_policy: HeaderValue,
}

impl UiSettings {
    /// Forms post to the UI itself, and the authorize button's answer redirects to RemoteLock's
    /// authorize page, which the browser checks against `form-action` too.
    pub fn new(cookie_secure: bool, oauth_url: &Url) -> Self {
        let policy = format!(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
            oauth_url.origin().ascii_serialization()
        );
        Self {
            cookie_secure,
            content_security_policy: HeaderValue::from_str(&policy)
                .expect("an origin is a valid header value"),
        }
    }
}

pub(crate) fn routes(settings: &UiSettings) -> Router<AppState> {
    Router::new()
        .merge(sign_in::routes())
        .merge(smart_locks::routes())
        .merge(unlink::routes())
        .merge(bookings::routes())
        .merge(locks::routes())
        .merge(failures::routes())
        .merge(settings::routes())
        .merge(reports::routes())
        .route("/static/ui.css", get(stylesheet))
        .route("/static/link-filter.js", get(script))
        .layer(middleware::from_fn_with_state(
            settings.content_security_policy.clone(),
            security_headers,
        ))
}

/// Pages show who is signed in and what they may do: never cached, never framed.
async fn security_headers(
    axum::extract::State(policy): axum::extract::State<HeaderValue>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/ui.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/link-filter.js"),
    )
}

/// An unknown address: a problem under the API's prefix, a page with a sentence elsewhere.
pub(crate) async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        Problem::not_found(format!("no such path: {}", uri.path())).into_response()
    } else {
        page::UiError::NoSuchPage.into_response()
    }
}

/// Back to the Smart Locks page, which shows `notice` once.
pub(crate) async fn land_with_notice(
    pool: &PgPool,
    session: &Session,
    notice: &Notice,
) -> Response {
    land_on("/", pool, session, notice).await
}

/// To the page at `path`, which shows `notice` once.
pub(crate) async fn land_on(
    path: &str,
    pool: &PgPool,
    session: &Session,
    notice: &Notice,
) -> Response {
    match session.leave_notice(pool, notice).await {
        Ok(()) => Redirect::to(path).into_response(),
        Err(error) => page::UiError::from(error).into_response(),
    }
}
