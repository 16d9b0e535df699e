//! What every page shares: the frame around it (who is signed in, the sign-out form, the
//! notice), rendering, times in a named zone, and errors as a sentence on a page.

use crate::{
    lock_health,
    staff::{Role, sessions::Session},
    startup::AppState,
};
use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use lockbridge_domain::TimeZone;
use lockbridge_http::problem::Problem;
use lockbridge_runtime::telemetry::error_chain;

/// The part of the UI a page belongs to, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    SmartLocks,
    Bookings,
    Locks,
    Failures,
    Reports,
    Settings,
}

/// The frame of a signed-in page.
pub(crate) struct Chrome {
    pub section: Section,
    pub email: String,
    pub is_admin: bool,
    pub csrf_token: String,
    pub notice: Option<String>,
    pub notice_is_error: bool,
    /// Locks needed soon that are offline or low: the navigation's badge.
    pub lock_warnings: Option<usize>,
}

impl Chrome {
    /// The frame of a page about to be shown: its notice, if any, is not shown again.
    pub async fn shown(
        state: &AppState,
        session: &Session,
        section: Section,
    ) -> Result<Self, UiError> {
        if session.notice.is_some() {
            session.notice_shown(&state.pool).await?;
        }
        Ok(Self {
            lock_warnings: lock_health::warning_count(state).await,
            ..Self::of(session, section)
        })
    }

    /// The frame of a page that shows no notice (a confirmation): the notice waits.
    pub fn of(session: &Session, section: Section) -> Self {
        Self {
            section,
            email: session.email.to_string(),
            is_admin: session.role == Role::Admin,
            csrf_token: session.csrf_token.clone(),
            notice: session.notice.as_ref().map(|n| n.text.clone()),
            notice_is_error: session.notice.as_ref().is_some_and(|n| n.is_error),
            lock_warnings: None,
        }
    }
}

pub(crate) fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => UiError::Render(error).into_response(),
    }
}

/// `instant` as a wall clock in `zone`, the zone named: “2026-12-02 09:30 EST (America/New_York)”.
pub(crate) fn local_time(instant: DateTime<Utc>, zone: TimeZone) -> String {
    let local = instant.with_timezone(&zone.tz());
    format!("{} ({})", local.format("%Y-%m-%d %H:%M %Z"), zone.name())
}

/// “15 minutes”, “1 hour”, “90 minutes”.
pub(crate) fn span(duration: chrono::Duration) -> String {
    let minutes = duration.num_minutes();
    match minutes {
        m if m % 60 == 0 && m != 0 => {
            let hours = m / 60;
            format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
        }
        1 => "1 minute".to_owned(),
        m => format!("{m} minutes"),
    }
}

pub(crate) fn utc_time(instant: DateTime<Utc>) -> String {
    format!("{} UTC", instant.format("%Y-%m-%d %H:%M"))
}

/// A problem's detail as a sentence: capitalised, with a full stop.
pub(crate) fn sentence(detail: &str) -> String {
    let mut chars = detail.trim().chars();
    let mut text: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// Why a page cannot be shown; each is answered with a sentence on a page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    #[error("sign in first")]
    SignInNeeded,
    #[error("this page is for admins: you are signed in with a staff account")]
    AdminsOnly,
    #[error(
        "this form has expired or did not come from lockbridge's pages: reload the page and \
         try again"
    )]
    CsrfRefused,
    #[error("{0}")]
    BadForm(String),
    #[error("there is no page at this address: start again from Smart Locks")]
    NoSuchPage,
    #[error("{}", .0.detail)]
    Refused(Problem),
    #[error("the database is unavailable: try again in a moment")]
    Database(#[source] sqlx::Error),
    #[error("the page cannot be shown")]
    Render(#[source] askama::Error),
}

impl From<sqlx::Error> for UiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<Problem> for UiError {
    fn from(problem: Problem) -> Self {
        Self::Refused(problem)
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: String,
}

impl UiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::SignInNeeded => StatusCode::UNAUTHORIZED,
            Self::AdminsOnly | Self::CsrfRefused => StatusCode::FORBIDDEN,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::NoSuchPage => StatusCode::NOT_FOUND,
            Self::Refused(problem) => problem.status,
            Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match &self {
            Self::SignInNeeded => return Redirect::to("/sign-in").into_response(),
            Self::Database(_) | Self::Render(_) => {
                tracing::error!(error = %error_chain(&self), "staff page failed");
            }
            _ => {}
        }
        let page = MessagePage {
            title: match self.status() {
                StatusCode::FORBIDDEN => "Not allowed",
                status if status.is_server_error() => "Something is unavailable",
                _ => "That did not work",
            },
            message: sentence(&self.to_string()),
        };
        match page.render() {
            Ok(body) => (self.status(), Html(body)).into_response(),
            // The message page has no data that can fail: this is a build mistake.
            Err(_) => (self.status(), "The page cannot be shown.").into_response(),
        }
    }
}
