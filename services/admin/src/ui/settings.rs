//! The Settings page (admins only): lead time and grace everywhere, per location and per space
//! (the most specific wins), the PIN length and the staff alert recipients. A field left empty
//! sets nothing there: the wider setting, or the configuration, applies.

use std::time::Duration;

use askama::Template;
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use lockbridge_domain::TimeZone;
use serde::Deserialize;

use super::session::Posted;
use super::{
    land_on,
    page::{Chrome, Section, UiError, local_time, render, span, utc_time},
};
use crate::staff::sessions::Session;
use crate::{
    settings::{self, Scope, Window},
    spaces,
    staff::{Email, sessions::Notice},
    startup::AppState,
};

/// Lead time and grace: at most a day (the schema agrees).
const MAX_MINUTES: u64 = 24 * 60;
/// PIN lengths every lock takes (remotelock-api.md, PIN rules).
const PIN_DIGITS: std::ops::RangeInclusive<u8> = 4..=8;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(show))
        .route("/settings/window", post(save_window))
        .route("/settings/pins-and-alerts", post(save_pins_and_alerts))
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    scopes: Vec<ScopeChoice>,
    window_form: WindowForm,
    window_errors: Vec<String>,
    windows: Vec<WindowRow>,
    configured_lead: String,
    configured_grace: String,
    pins_form: PinsForm,
    pins_errors: Vec<String>,
    configured_pin_digits: u8,
    configured_recipients: String,
}

struct ScopeChoice {
    value: String,
    label: String,
    selected: bool,
}

struct WindowRow {
    scope: String,
    label: String,
    lead: String,
    grace: String,
    updated: String,
}

#[derive(Deserialize, Default)]
struct WindowForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    lead_minutes: String,
    #[serde(default)]
    grace_minutes: String,
}

#[derive(Deserialize, Default)]
struct PinsForm {
    #[serde(default)]
    pin_digits: String,
    #[serde(default)]
    alert_recipients: String,
}

fn minutes_text(secs: Option<i32>) -> String {
    secs.map_or_else(
        || "not set".to_owned(),
        |secs| span(chrono::Duration::seconds(i64::from(secs))),
    )
}

/// Where a setting applies, as the page names it.
fn scope_label(scope: &Scope, name: &str) -> String {
    match scope {
        Scope::Everywhere => "Every space".to_owned(),
        Scope::Location(_) => format!("Every space of {name}"),
        Scope::Space(_) => name.to_owned(),
    }
}

async fn page(
    state: &AppState,
    session: &Session,
    window_form: WindowForm,
    window_errors: Vec<String>,
    pins_form: Option<PinsForm>,
    pins_errors: Vec<String>,
) -> Result<SettingsPage, UiError> {
    let catalogue = spaces::catalogue(&state.pool, false).await?;
    let mut scopes = vec![(Scope::Everywhere, "Every space".to_owned())];
    let mut locations: Vec<_> = catalogue
        .iter()
        .map(|s| (s.location.location_id.clone(), s.location.name.clone()))
        .collect();
    locations.dedup();
    scopes.extend(
        locations
            .into_iter()
            .map(|(id, name)| (Scope::Location(id), format!("Every space of {name}"))),
    );
    scopes.extend(
        catalogue
            .iter()
            .filter(|s| s.is_bookable_as_whole())
            .map(|s| {
                (
                    Scope::Space(s.space_id.clone()),
                    format!("{} ({})", s.name, s.location.name),
                )
            }),
    );
    let windows = settings::windows(&state.pool)
        .await?
        .into_iter()
        .filter_map(|stored| {
            let scope = stored.scope()?;
            Some(WindowRow {
                label: scope_label(&scope, &stored.name),
                scope: scope.form_value(),
                lead: minutes_text(stored.lead_time_secs),
                grace: minutes_text(stored.grace_secs),
                updated: format!(
                    "{} by {}",
                    match stored.time_zone.as_deref() {
                        Some(zone) => local_time(stored.updated_at, TimeZone::from_stored(zone)),
                        None => utc_time(stored.updated_at),
                    },
                    stored.updated_by
                ),
            })
        })
        .collect();
    let pins_form = match pins_form {
        Some(form) => form,
        None => {
            let (digits, recipients) = settings::pins_and_alerts(&state.pool).await?;
            PinsForm {
                pin_digits: digits.map(|d| d.to_string()).unwrap_or_default(),
                alert_recipients: recipients.unwrap_or_default(),
            }
        }
    };
    let configured = state.configured_window;
    Ok(SettingsPage {
        chrome: Chrome::shown(state, session, Section::Settings).await?,
        scopes: scopes
            .into_iter()
            .map(|(scope, label)| ScopeChoice {
                selected: scope.form_value() == window_form.scope,
                value: scope.form_value(),
                label,
            })
            .collect(),
        window_form,
        window_errors,
        windows,
        configured_lead: span(chrono::Duration::seconds(
            configured.lead_time.as_secs() as i64
        )),
        configured_grace: span(chrono::Duration::seconds(configured.grace.as_secs() as i64)),
        pins_form,
        pins_errors,
        configured_pin_digits: configured.pin_digits,
        configured_recipients: state.configured_alerts.recipients.clone(),
    })
}

async fn show(State(state): State<AppState>, session: Session) -> Result<Response, UiError> {
    session.require_admin()?;
    let page = page(
        &state,
        &session,
        WindowForm::default(),
        Vec::new(),
        None,
        Vec::new(),
    )
    .await?;
    Ok(render(StatusCode::OK, &page))
}

/// A number of minutes from 0 to a day; empty: not set.
fn minutes(what: &str, raw: &str) -> Result<Option<Duration>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u64>() {
        Ok(m) if m <= MAX_MINUTES => Ok(Some(Duration::from_secs(m * 60))),
        Ok(m) => Err(format!(
            "{what}: {m} minutes is more than 24 hours ({MAX_MINUTES} minutes), the most it may be."
        )),
        Err(_) => Err(format!(
            "{what}: “{raw}” is not a whole number of minutes from 0 to {MAX_MINUTES}."
        )),
    }
}

async fn save_window(
    State(state): State<AppState>,
    posted: Posted<WindowForm>,
) -> Result<Response, UiError> {
    let session = &posted.session;
    session.require_admin()?;
    let form = posted.form;
    let scope = match Scope::from_form(&form.scope) {
        Some(scope) if settings::exists(&state.pool, &scope).await? => Some(scope),
        _ => None,
    };
    let lead = minutes("Lead time", &form.lead_minutes);
    let grace = minutes("Grace", &form.grace_minutes);
    let (Some(scope), Ok(lead_time), Ok(grace)) = (&scope, &lead, &grace) else {
        let errors = [
            scope.is_none().then(|| {
                "Where: choose every space, a location or a space of the catalogue from the list."
                    .to_owned()
            }),
            lead.err(),
            grace.err(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let page = page(&state, session, form, errors, None, Vec::new()).await?;
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    };
    let window = Window {
        lead_time: *lead_time,
        grace: *grace,
    };
    let queued = settings::save_window(&state.pool, scope, window, session.email.as_str()).await?;
    tracing::info!(scope = %scope.form_value(), queued, "staff changed the lead time and grace");
    let set = |value: Option<Duration>| {
        value.map_or_else(
            || "not set (the wider setting applies)".to_owned(),
            |d| span(chrono::Duration::seconds(d.as_secs() as i64)),
        )
    };
    let notice = Notice::done(format!(
        "Saved: lead time {}, grace {}. {} upcoming booking{} of linked spaces there get{} the \
         PIN window again.",
        set(window.lead_time),
        set(window.grace),
        queued,
        if queued == 1 { "" } else { "s" },
        if queued == 1 { "s" } else { "" },
    ));
    Ok(land_on("/settings", &state.pool, session, &notice).await)
}

/// Comma-separated addresses, each plain or as `Name <address>`.
fn recipients(raw: &str) -> Result<Option<String>, String> {
    let listed: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if listed.is_empty() {
        return Ok(None);
    }
    for entry in &listed {
        let address = match entry.rsplit_once('<') {
            Some((_, rest)) => rest.strip_suffix('>').unwrap_or(rest),
            None => entry,
        };
        if address.parse::<Email>().is_err() {
            return Err(format!(
                "Alert recipients: “{entry}” is not an email address (such as desk@library.org)."
            ));
        }
    }
    Ok(Some(listed.join(", ")))
}

async fn save_pins_and_alerts(
    State(state): State<AppState>,
    posted: Posted<PinsForm>,
) -> Result<Response, UiError> {
    let session = &posted.session;
    session.require_admin()?;
    let form = posted.form;
    let raw_digits = form.pin_digits.trim();
    let digits = match raw_digits {
        "" => Ok(None),
        raw => raw
            .parse::<u8>()
            .ok()
            .filter(|d| PIN_DIGITS.contains(d))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "PIN length: “{raw}” is not a number of digits from {} to {}, the PINs every lock takes.",
                    PIN_DIGITS.start(),
                    PIN_DIGITS.end()
                )
            }),
    };
    let listed = recipients(&form.alert_recipients);
    let (Ok(digits), Ok(listed)) = (&digits, &listed) else {
        let errors = [digits.err(), listed.err()].into_iter().flatten().collect();
        let page = page(
            &state,
            session,
            WindowForm::default(),
            Vec::new(),
            Some(form),
            errors,
        )
        .await?;
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    };
    settings::save_pins_and_alerts(
        &state.pool,
        *digits,
        listed.as_deref(),
        session.email.as_str(),
    )
    .await?;
    let notice = Notice::done(format!(
        "Saved: new PINs have {} digits; staff alerts go to {}.",
        digits.unwrap_or(state.configured_window.pin_digits),
        listed
            .as_deref()
            .unwrap_or("the configured recipients (alerts.recipients)")
    ));
    Ok(land_on("/settings", &state.pool, session, &notice).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_whole_and_at_most_a_day() {
        assert_eq!(minutes("Lead time", " "), Ok(None));
        assert_eq!(
            minutes("Lead time", "30"),
            Ok(Some(Duration::from_secs(1800)))
        );
        assert_eq!(
            minutes("Grace", "1440"),
            Ok(Some(Duration::from_secs(86_400)))
        );
        assert!(
            minutes("Grace", "1441")
                .unwrap_err()
                .contains("more than 24 hours")
        );
        assert!(
            minutes("Lead time", "-5")
                .unwrap_err()
                .contains("“-5” is not")
        );
        assert!(minutes("Lead time", "1.5").is_err());
    }

    #[test]
    fn recipients_are_addresses_plain_or_named() {
        assert_eq!(recipients(" , "), Ok(None));
        assert_eq!(
            recipients("desk@library.org,Ada <ada@library.org>"),
            Ok(Some("desk@library.org, Ada <ada@library.org>".to_owned()))
        );
        assert!(
            recipients("desk@library.org, nobody")
                .unwrap_err()
                .contains("“nobody”")
        );
    }
}
