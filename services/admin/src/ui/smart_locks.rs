//! The Smart Locks page (the home page): the RemoteLock authorization with its buttons, the
//! links, and the form that links a space with a lock — Location → Category → Space → Lock,
//! each list filtered by the one before (by reloading with the choice, or in place by
//! static/link-filter.js).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::{
    Router,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
use lockbridge_domain::{LockId, SpaceId};
use lockbridge_http::problem::Problem;
use lockbridge_remotelock::Device;
use lockbridge_runtime::telemetry::error_chain;
use lockbridge_work::failures::{self, FailureKind};
use serde::Deserialize;

use super::{
    land_with_notice,
    page::{Chrome, Section, UiError, local_time, render, sentence, utc_time},
    session::{NoFields, Posted},
};
use crate::{
    authorization::{self, StoredAuthorization},
    links,
    spaces::{self, SpaceView},
    staff::sessions::{Notice, Session},
    startup::AppState,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(show))
        .route("/remotelock/authorize", post(authorize))
        .route(
            "/remotelock/authorization/remove",
            post(remove_authorization),
        )
        .route("/links", post(link))
}

#[derive(Template)]
#[template(path = "smart_locks.html")]
struct SmartLocksPage {
    chrome: Chrome,
    authorization: Option<AuthorizationSummary>,
    /// Why Remove Authorization is disabled, while it is.
    removal_blocked: Option<String>,
    links: Vec<LinkRow>,
    /// Why the locks' battery levels (and the lock list) are missing, when they are.
    locks_unavailable: Option<String>,
    picker: Picker,
}

struct AuthorizationSummary {
    account: String,
    since: String,
    health: String,
    healthy: bool,
}

struct LinkRow {
    space_id: String,
    location: String,
    category: String,
    space: String,
    lock: String,
    battery: String,
    since: String,
}

/// An option of one of the link form's lists; `parent` is what the list before chose.
struct Choice {
    value: String,
    label: String,
    parent: String,
    selected: bool,
}

#[derive(Default)]
struct Picker {
    locations: Vec<Choice>,
    categories: Vec<Choice>,
    spaces: Vec<Choice>,
    locks: Vec<Choice>,
}

/// The link form's choices so far, when it reloads without JavaScript.
#[derive(Deserialize, Default)]
struct Chosen {
    location: Option<String>,
    category: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    chosen: Result<Query<Chosen>, QueryRejection>,
) -> Result<Response, UiError> {
    // A mangled choice is no choice: the lists are shown whole.
    let Query(chosen) = chosen.unwrap_or_default();
    let stored = authorization::stored(&state.pool).await?;
    let refused = failures::is_open(&state.pool, FailureKind::Authorization, None).await?;
    let catalogue = spaces::catalogue(&state.pool, false).await?;
    let (locks, locks_unavailable) = if stored.authorized_at.is_some() {
        match state.staff_calls().locks().await {
            Ok(locks) => {
                // The navigation's count of lock warnings reads the same list.
                state.devices.remember(&locks);
                (locks, None)
            }
            Err(error) => (
                Vec::new(),
                Some(sentence(&format!(
                    "RemoteLock cannot list the locks now ({}); battery levels and the locks \
                     to link are missing until it can",
                    error_chain(&error)
                ))),
            ),
        }
    } else {
        (Vec::new(), None)
    };
    let page = SmartLocksPage {
        chrome: Chrome::shown(&state, &session, Section::SmartLocks).await?,
        removal_blocked: (stored.links > 0).then(|| {
            format!(
                "Remove Authorization is unavailable while {} space{} linked to a lock: remove \
                 the links first.",
                stored.links,
                if stored.links == 1 { " is" } else { "s are" }
            )
        }),
        authorization: summary(&stored, refused),
        links: link_rows(&catalogue, &locks),
        locks_unavailable,
        picker: picker(&catalogue, &locks, &chosen),
    };
    Ok(render(StatusCode::OK, &page))
}

fn summary(stored: &StoredAuthorization, refused: bool) -> Option<AuthorizationSummary> {
    let since = stored.authorized_at?;
    let expires = stored.access_expires_at?;
    let (health, healthy) = if refused {
        (
            "RemoteLock refuses this authorization: bookings get no PIN until it is authorized \
             again."
                .to_owned(),
            false,
        )
    } else if stored.renewable {
        (
            format!(
                "Working: the access token renews by itself (the current one is valid until {}).",
                utc_time(expires)
            ),
            true,
        )
    } else if expires > Utc::now() {
        (
            format!(
                "Working until {}; RemoteLock gave no refresh token, so it must be authorized \
                 again then.",
                utc_time(expires)
            ),
            true,
        )
    } else {
        (
            format!("Expired at {}: authorize again.", utc_time(expires)),
            false,
        )
    };
    Some(AuthorizationSummary {
        account: match (&stored.account_name, &stored.account_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (Some(name), None) => name.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => "an account whose name RemoteLock did not say".to_owned(),
        },
        since: utc_time(since),
        health,
        healthy,
    })
}

fn link_rows(catalogue: &[SpaceView], locks: &[Device]) -> Vec<LinkRow> {
    let battery: HashMap<&LockId, Option<u8>> =
        locks.iter().map(|l| (&l.id, l.power_level)).collect();
    catalogue
        .iter()
        .filter_map(|space| {
            let link = space.link.as_ref()?;
            let battery = match battery.get(&link.lock_id) {
                Some(Some(level)) => format!("{level}%"),
                Some(None) => "not reported".to_owned(),
                None if locks.is_empty() => "unknown".to_owned(),
                None => "not in the RemoteLock account".to_owned(),
            };
            Some(LinkRow {
                space_id: space.space_id.to_string(),
                location: space.location.name.clone(),
                category: space.category.name.clone(),
                space: space.name.clone(),
                lock: link.lock_name.clone(),
                battery,
                since: local_time(link.linked_at, space.location.time_zone),
            })
        })
        .collect()
}

/// Only spaces bookable as a whole and not linked, and only locks not linked, are offered;
/// a chosen location or category narrows the lists after it.
fn picker(catalogue: &[SpaceView], locks: &[Device], chosen: &Chosen) -> Picker {
    let linkable: Vec<&SpaceView> = catalogue
        .iter()
        .filter(|s| s.link.is_none() && s.is_bookable_as_whole())
        .collect();
    let is = |wanted: &Option<String>, value: &str| wanted.as_deref() == Some(value);
    let in_location = |s: &SpaceView| {
        chosen.location.is_none() || is(&chosen.location, s.location.location_id.as_str())
    };
    let in_category = |s: &SpaceView| {
        chosen.category.is_none() || is(&chosen.category, s.category.category_id.as_str())
    };
    let mut locations = BTreeMap::new();
    let mut categories = BTreeMap::new();
    for space in &linkable {
        let location = space.location.location_id.as_str();
        locations.entry(location).or_insert_with(|| Choice {
            value: location.to_owned(),
            label: space.location.name.clone(),
            parent: String::new(),
            selected: is(&chosen.location, location),
        });
        if in_location(space) {
            let category = space.category.category_id.as_str();
            categories.entry(category).or_insert_with(|| Choice {
                value: category.to_owned(),
                label: space.category.name.clone(),
                parent: location.to_owned(),
                selected: is(&chosen.category, category),
            });
        }
    }
    let linked: Vec<&LockId> = catalogue
        .iter()
        .filter_map(|s| s.link.as_ref().map(|l| &l.lock_id))
        .collect();
    Picker {
        locations: locations.into_values().collect(),
        categories: categories.into_values().collect(),
        spaces: linkable
            .iter()
            .filter(|s| in_location(s) && in_category(s))
            .map(|s| Choice {
                value: s.space_id.to_string(),
                label: s.name.clone(),
                parent: s.category.category_id.to_string(),
                selected: false,
            })
            .collect(),
        locks: locks
            .iter()
            .filter(|l| !linked.contains(&&l.id))
            .map(|l| Choice {
                value: l.id.to_string(),
                label: l.name.clone(),
                parent: String::new(),
                selected: false,
            })
            .collect(),
    }
}

async fn authorize(
    State(state): State<AppState>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    posted.session.require_admin()?;
    let url = authorization::begin(&state).await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

async fn remove_authorization(
    State(state): State<AppState>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    posted.session.require_admin()?;
    let notice = match authorization::remove_stored(&state.pool, &state.tokens).await {
        Ok(()) => Notice::done(
            "The RemoteLock authorization is removed: lockbridge no longer acts on the account.",
        ),
        Err(problem) => Notice::failed(sentence(&problem.detail)),
    };
    Ok(land_with_notice(&state.pool, &posted.session, &notice).await)
}

#[derive(Deserialize)]
struct LinkForm {
    #[serde(default)]
    space_id: String,
    #[serde(default)]
    lock_id: String,
}

async fn link(
    State(state): State<AppState>,
    posted: Posted<LinkForm>,
) -> Result<Response, UiError> {
    posted.session.require_admin()?;
    let LinkForm { space_id, lock_id } = posted.form;
    let notice = match (SpaceId::parse(&space_id), LockId::parse(&lock_id)) {
        (Ok(space), Ok(lock)) => match links::create(&state, space, lock).await {
            Ok(link) => Notice::done(format!(
                "{} is now linked with the lock “{}”; {} upcoming booking{} will get a PIN.",
                link.space_name,
                link.lock_name,
                link.upcoming_bookings,
                if link.upcoming_bookings == 1 { "" } else { "s" }
            )),
            Err(problem) => Notice::failed(link_refusal(&problem, &space_id, &lock_id)),
        },
        _ => Notice::failed("Choose a space and a lock to link."),
    };
    Ok(land_with_notice(&state.pool, &posted.session, &notice).await)
}

/// The API's refusals name the field at fault, and some details read after it (“is a
/// container: …”): the sentence then starts with what was chosen.
fn link_refusal(problem: &Problem, space_id: &str, lock_id: &str) -> String {
    let subject = match problem.field.as_deref() {
        Some("space_id") => format!("space {space_id}"),
        Some("lock_id") => format!("lock {lock_id}"),
        _ => return sentence(&problem.detail),
    };
    // A field's own detail, without the field's name in front.
    let detail = problem
        .errors
        .first()
        .map_or(problem.detail.as_str(), |error| error.detail.as_str());
    if detail.starts_with("is ") || detail.starts_with("changed ") {
        sentence(&format!("{subject} {detail}"))
    } else if detail.starts_with("space ") || detail.starts_with("lock ") {
        sentence(detail)
    } else {
        sentence(&format!("{subject}: {detail}"))
    }
}
