//! The account's events as lockbridge keeps them (`remotelock_events`): stored once per event
//! id, whichever way it came first — a webhook the admin received or the lock-provisioner's
//! poll of `GET /events` — so the two never apply one event twice. The lock-provisioner
//! applies them (`services/lock-provisioner/src/door_events.rs`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgExecutor;

use crate::resources::{Event, Flattened};

/// How an event reached lockbridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Webhook,
    Poll,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Poll => "poll",
        }
    }
}

/// The channel that wakes the lock-provisioner when a webhook stored an event.
pub const STORED_CHANNEL: &str = "remotelock_events";

/// A webhook's body: one event as `/events` shows it, under `data` (remotelock-api.md §3.9).
pub fn from_webhook(body: &[u8]) -> Result<Event, serde_json::Error> {
    #[derive(Deserialize)]
    struct Notification {
        data: Flattened<Event>,
    }
    serde_json::from_slice::<Notification>(body).map(|n| n.data.0)
}

/// Stores `event` unless it is stored already; answers whether it was new. Its PIN (keypad
/// events carry the one typed) and names are not kept: `Event` has no field for them.
pub async fn store(db: impl PgExecutor<'_>, event: &Event, via: Via) -> Result<bool, sqlx::Error> {
    let (lock, person) = event.lock_and_person();
    let stored = sqlx::query(
        "INSERT INTO remotelock_events (event_id, kind, occurred_at, created_at, received_via,
                                        status, status_info, method, power_level, lock_id,
                                        person_type, person_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(event.kind())
    .bind(event.occurred_at.unwrap_or(event.created_at))
    .bind(event.created_at)
    .bind(via.as_str())
    .bind(&event.status)
    .bind(&event.status_info)
    .bind(&event.method)
    .bind(event.power_level)
    .bind(lock)
    .bind(person.map(|(kind, _)| kind))
    .bind(person.map(|(_, id)| id))
    .execute(db)
    .await?;
    let new = stored.rows_affected() == 1;
    let via = via.as_str();
    metrics::counter!("lockbridge_remotelock_events_total", "via" => via, "new" => if new { "yes" } else { "no" })
        .increment(1);
    Ok(new)
}

/// Records what a lock last said of its connection and battery (`None`: it said nothing of
/// that) as of `at`: from its events (lock-provisioner) and from device reads (admin). A report
/// older than the one kept changes nothing, since events arrive late and out of order.
pub async fn record_health(
    db: impl PgExecutor<'_>,
    lock: &str,
    (connected, power_level): (Option<bool>, Option<i32>),
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO lock_health (lock_id, connected, connected_at, power_level, power_at)
         VALUES ($1, $2, CASE WHEN $2 IS NOT NULL THEN $4 END, $3, CASE WHEN $3 IS NOT NULL THEN $4 END)
         ON CONFLICT (lock_id) DO UPDATE SET
             connected = CASE WHEN $2 IS NULL OR lock_health.connected_at > $4
                              THEN lock_health.connected ELSE $2 END,
             connected_at = CASE WHEN $2 IS NULL OR lock_health.connected_at > $4
                                 THEN lock_health.connected_at ELSE $4 END,
             power_level = CASE WHEN $3 IS NULL OR lock_health.power_at > $4
                                THEN lock_health.power_level ELSE $3 END,
             power_at = CASE WHEN $3 IS NULL OR lock_health.power_at > $4
                             THEN lock_health.power_at ELSE $4 END,
             updated_at = now()",
    )
    .bind(lock)
    .bind(connected)
    .bind(power_level)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}
