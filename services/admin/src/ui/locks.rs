//! The Locks page: every lock of the RemoteLock account with its battery, connectivity and
//! last contact, the space linked to it and that space's upcoming bookings, and a warning on
//! each lock that is offline or low while a booking needs it soon (`lock_health`).

use std::collections::HashMap;

use askama::Template;
use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use lockbridge_domain::TimeZone;
use lockbridge_remotelock::RemoteLockLocationId;
use lockbridge_runtime::telemetry::error_chain;

use super::{
    activity,
    page::{Chrome, Section, UiError, local_time, render, sentence, utc_time},
};
use crate::{
    lock_health::{self, LinkedLock},
    staff::sessions::Session,
    startup::AppState,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/locks", get(show))
}

#[derive(Template)]
#[template(path = "locks.html")]
struct LocksPage {
    chrome: Chrome,
    /// Why the list is missing, when RemoteLock cannot be asked.
    unavailable: Option<String>,
    battery_warn_percent: u8,
    warn_within: String,
    locks: Vec<LockRow>,
    /// What the locks reported last, newest first.
    activity: Vec<ActivityRow>,
}

/// How many of the locks' latest reports the page shows.
const ACTIVITY_SHOWN: i64 = 25;

struct ActivityRow {
    at: String,
    lock: String,
    what: String,
    booking_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Reported {
    occurred_at: chrono::DateTime<chrono::Utc>,
    kind: String,
    status: Option<String>,
    status_info: Option<String>,
    lock_id: Option<String>,
    booking_id: Option<String>,
}

struct LockRow {
    lock_id: String,
    name: String,
    location: String,
    battery: String,
    online: Option<bool>,
    last_seen: String,
    space: Option<String>,
    upcoming: String,
    warnings: Vec<String>,
}

/// “2 days”, “36 hours”, “90 minutes”: how far ahead a lock is warned of.
fn ahead(within: std::time::Duration) -> String {
    let minutes = within.as_secs() / 60;
    let (count, unit) = match minutes {
        m if m % (24 * 60) == 0 => (m / (24 * 60), "day"),
        m if m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

fn upcoming(link: &LinkedLock) -> String {
    let zone = TimeZone::from_stored(&link.time_zone);
    match (link.upcoming, link.next_starts_at) {
        (0, _) | (_, None) => "none".to_owned(),
        (count, Some(next)) => format!("{count}, the next at {}", local_time(next, zone)),
    }
}

async fn show(State(state): State<AppState>, session: Session) -> Result<Response, UiError> {
    let settings = state.locks;
    let mut linked: HashMap<_, LinkedLock> =
        lock_health::linked_locks(&state.pool, settings.warn_within)
            .await?
            .into_iter()
            .map(|link| (link.lock_id.clone(), link))
            .collect();
    let reported: Vec<Reported> = sqlx::query_as(
        "SELECT occurred_at, kind, status, status_info, lock_id, booking_id FROM remotelock_events
         WHERE lock_id IS NOT NULL ORDER BY occurred_at DESC LIMIT $1",
    )
    .bind(ACTIVITY_SHOWN)
    .fetch_all(&state.pool)
    .await?;
    // Each lock's name and zone, for its reports; an unknown lock by its id, in UTC.
    let mut named: HashMap<String, (String, Option<TimeZone>)> = HashMap::new();
    let remotelock = state.staff_calls();
    let (locks, unavailable) = match tokio::try_join!(remotelock.locks(), remotelock.locations()) {
        Ok((devices, locations)) => {
            state.devices.remember(&devices);
            let zones: HashMap<RemoteLockLocationId, (String, TimeZone)> = locations
                .into_iter()
                .map(|l| (l.id, (l.name, l.time_zone)))
                .collect();
            for device in &devices {
                let zone = device.location_id.as_ref().and_then(|id| zones.get(id));
                named.insert(
                    device.id.to_string(),
                    (device.name.clone(), zone.map(|(_, zone)| *zone)),
                );
            }
            let rows = devices
                .iter()
                .map(|device| {
                    let place = device.location_id.as_ref().and_then(|id| zones.get(id));
                    let link = linked.remove(&device.id);
                    let needed_soon = link.as_ref().is_some_and(|l| l.needed_soon);
                    LockRow {
                        lock_id: device.id.to_string(),
                        name: device.name.clone(),
                        location: place.map_or_else(|| "none".to_owned(), |(name, _)| name.clone()),
                        battery: device
                            .power_level
                            .map_or_else(|| "not reported".to_owned(), |level| format!("{level}%")),
                        online: device.connected,
                        last_seen: match (device.connected_at, place) {
                            (Some(at), Some((_, zone))) => local_time(at, *zone),
                            (Some(at), None) => utc_time(at),
                            (None, _) => "never".to_owned(),
                        },
                        upcoming: link.as_ref().map_or_else(|| "—".to_owned(), upcoming),
                        space: link.map(|l| format!("{} ({})", l.space_name, l.space_id)),
                        warnings: if needed_soon {
                            lock_health::warnings(device, settings.battery_warn_percent)
                                .into_iter()
                                .map(|w| w.text())
                                .collect()
                        } else {
                            Vec::new()
                        },
                    }
                })
                .collect();
            (rows, None)
        }
        Err(error) => (
            Vec::new(),
            Some(sentence(&format!(
                "RemoteLock cannot list the locks now ({}); try again in a moment",
                error_chain(&error)
            ))),
        ),
    };
    let activity = reported
        .into_iter()
        .map(|report| {
            let lock_id = report.lock_id.unwrap_or_default();
            let (lock, zone) = named
                .get(&lock_id)
                .cloned()
                .unwrap_or_else(|| (lock_id.clone(), None));
            ActivityRow {
                at: zone.map_or_else(
                    || utc_time(report.occurred_at),
                    |zone| local_time(report.occurred_at, zone),
                ),
                lock,
                what: activity::describe(
                    &report.kind,
                    report.status.as_deref(),
                    report.status_info.as_deref(),
                ),
                booking_id: report.booking_id,
            }
        })
        .collect();
    let page = LocksPage {
        chrome: Chrome::shown(&state, &session, Section::Locks).await?,
        unavailable,
        battery_warn_percent: settings.battery_warn_percent,
        warn_within: ahead(settings.warn_within),
        locks,
        activity,
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::ahead;
    use std::time::Duration;

    #[test]
    fn how_far_ahead_reads_in_the_largest_whole_unit() {
        assert_eq!(ahead(Duration::from_secs(2 * 86_400)), "2 days");
        assert_eq!(ahead(Duration::from_secs(86_400)), "1 day");
        assert_eq!(ahead(Duration::from_secs(36 * 3600)), "36 hours");
        assert_eq!(ahead(Duration::from_secs(90 * 60)), "90 minutes");
    }
}
