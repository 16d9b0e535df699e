//! Which locks need a person soon: offline, or a battery below `locks.battery_warn_percent`,
//! while a booking of the linked space starts within `locks.warn_within`. The Locks page shows
//! each warning; the navigation counts them from the devices RemoteLock listed at most a minute
//! ago, so that showing a page does not cost a RemoteLock request each time.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use lockbridge_domain::{LockId, SpaceId};
use lockbridge_remotelock::Device;
use lockbridge_runtime::telemetry::error_chain;
use sqlx::PgPool;

use crate::startup::AppState;

/// How old a device list the navigation's count may be read from.
const RECENT: Duration = Duration::from_secs(60);

/// A linked lock and the upcoming bookings of its space.
#[derive(sqlx::FromRow)]
pub(crate) struct LinkedLock {
    pub lock_id: LockId,
    pub space_id: SpaceId,
    pub space_name: String,
    pub time_zone: String,
    /// Confirmed bookings that have not ended.
    pub upcoming: i64,
    pub next_starts_at: Option<DateTime<Utc>>,
    /// A booking starts within `locks.warn_within` (or is on now).
    pub needed_soon: bool,
}

pub(crate) async fn linked_locks(
    pool: &PgPool,
    warn_within: Duration,
) -> Result<Vec<LinkedLock>, sqlx::Error> {
    let soon = Utc::now() + warn_within;
    sqlx::query_as(
        "SELECT k.lock_id, k.space_id, s.name AS space_name, l.time_zone,
                count(b.booking_id) AS upcoming, min(b.starts_at) AS next_starts_at,
                coalesce(bool_or(b.starts_at < $1), false) AS needed_soon
         FROM lock_links k
         JOIN spaces s ON s.space_id = k.space_id
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations l ON l.location_id = c.location_id
         LEFT JOIN bookings b ON b.space_id = k.space_id AND b.status = 'confirmed'
                             AND b.ends_at > now()
         GROUP BY k.lock_id, k.space_id, s.name, l.time_zone",
    )
    .bind(soon)
    .fetch_all(pool)
    .await
}

/// What is wrong with a lock that will be needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warning {
    Offline,
    LowBattery(u8),
}

impl Warning {
    pub fn text(self) -> String {
        match self {
            Self::Offline => "offline: it cannot receive new PINs".to_owned(),
            Self::LowBattery(level) => format!("battery low ({level}%)"),
        }
    }
}

/// What RemoteLock reports wrong with `device`; what it does not report is not held against it.
pub(crate) fn warnings(device: &Device, battery_warn_percent: u8) -> Vec<Warning> {
    let offline = (device.connected == Some(false)).then_some(Warning::Offline);
    let low = device
        .power_level
        .filter(|level| *level < battery_warn_percent)
        .map(Warning::LowBattery);
    offline.into_iter().chain(low).collect()
}

/// The devices RemoteLock listed (`None`: it could not be asked), and when.
type Listed = (Instant, Option<Arc<[Device]>>);

/// The account's devices as last listed, shared by the pages of one admin process. A failed
/// listing is remembered too: while RemoteLock is down, pages do not each wait on it.
#[derive(Clone, Default)]
pub(crate) struct DeviceCache(Arc<Mutex<Option<Listed>>>);

impl DeviceCache {
    pub fn remember(&self, devices: &[Device]) {
        self.keep(Some(devices.into()));
    }

    fn keep(&self, devices: Option<Arc<[Device]>>) {
        *self
            .0
            .lock()
            .expect("never poisoned: no code panics holding it") = Some((Instant::now(), devices));
    }

    async fn recent(&self, state: &AppState) -> Option<Arc<[Device]>> {
        let cached = self
            .0
            .lock()
            .expect("never poisoned: no code panics holding it")
            .clone();
        if let Some((at, devices)) = cached
            && at.elapsed() < RECENT
        {
            return devices;
        }
        match state.staff_calls().locks().await {
            Ok(devices) => {
                self.remember(&devices);
                Some(devices.into())
            }
            Err(error) => {
                warn_uncounted(&error);
                self.keep(None);
                None
            }
        }
    }
}

fn warn_uncounted(error: &(dyn std::error::Error + 'static)) {
    tracing::warn!(error = %error_chain(error), "cannot count the lock warnings");
}

/// How many linked locks needed soon have a warning; `None` when that cannot be known now.
pub(crate) async fn warning_count(state: &AppState) -> Option<usize> {
    let linked = linked_locks(&state.pool, state.locks.warn_within)
        .await
        .inspect_err(|error| warn_uncounted(error))
        .ok()?;
    let needed: Vec<&LinkedLock> = linked.iter().filter(|l| l.needed_soon).collect();
    if needed.is_empty() {
        return Some(0);
    }
    let devices = state.devices.recent(state).await?;
    Some(
        needed
            .iter()
            .filter(|link| {
                devices.iter().any(|d| {
                    d.id == link.lock_id
                        && !warnings(d, state.locks.battery_warn_percent).is_empty()
                })
            })
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(connected: Option<bool>, power_level: Option<u8>) -> Device {
        serde_json::from_value(serde_json::json!({
            "id": "e4b1c2d3-5f6a-4b7c-8d9e-0f1a2b3c4d01",
            "type": "lock",
            "name": "Study Room 101",
            "connected": connected,
            "power_level": power_level,
        }))
        .expect("a device")
    }

    #[test]
    fn offline_and_low_warn_and_what_is_not_reported_does_not() {
        assert_eq!(warnings(&device(Some(true), Some(87)), 20), []);
        assert_eq!(
            warnings(&device(Some(false), Some(12)), 20),
            [Warning::Offline, Warning::LowBattery(12)]
        );
        assert_eq!(warnings(&device(Some(true), Some(20)), 20), []);
        assert_eq!(warnings(&device(None, None), 20), []);
    }
}
