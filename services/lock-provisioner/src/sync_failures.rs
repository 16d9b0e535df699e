//! What the locks report after the API calls succeeded. RemoteLock accepts a guest and its
//! grant, and the lock may still refuse the PIN when it next syncs — "already used on this
//! device" shows up only then, as an `access_person_sync_failed` event with `pin_conflict`
//! (remotelock-api.md §3.5, §3.8). This task reads those events and gives the guest another
//! PIN, so the patron is emailed one that works.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingId, BookingWindow, PinState};
use lockbridge_remotelock::{Event, RemoteLockClient, RemoteLockError, Urgency};
use lockbridge_runtime::{db::claim_event, telemetry::error_chain};
use lockbridge_work::provisioning;
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store;

/// Claims of RemoteLock events in `processed_events`, apart from the broker's.
const CONSUMER: &str = "lock-provisioner:remotelock-events";
/// Events created this long before the last one read are read again: RemoteLock's clock and
/// ours differ, and `created_at` has whole seconds.
const OVERLAP: chrono::Duration = chrono::Duration::minutes(2);

pub(crate) struct SyncFailures {
    pub pool: PgPool,
    pub client: RemoteLockClient,
    pub every: Duration,
}

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("database access failed")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    RemoteLock(#[from] RemoteLockError),
}

impl SyncFailures {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(error) = self.poll().await {
                // Not authorized, rate limited, RemoteLock down: the next poll tries again, and
                // the provisioning jobs report what needs a person.
                tracing::warn!(error = %error_chain(&error), "cannot read the locks' sync failures");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.every) => {},
            }
        }
        tracing::info!("sync failure watch stopped");
    }

    async fn poll(&self) -> Result<(), WatchError> {
        let read_from = self.read_from().await?;
        // Routine: a conflict it finds queues the booking's new PIN, which has its own urgency.
        let events = self
            .client
            .for_work(Urgency::Routine)
            .sync_failures_since(read_from)
            .await?;
        let Some(newest) = events.iter().map(|e| e.created_at).max() else {
            return Ok(());
        };
        // Oldest first, as they happened.
        for event in events.iter().rev() {
            let mut tx = self.pool.begin().await?;
            if claim_event(&mut tx, CONSUMER, event_uuid(&event.id)).await? {
                handle(&mut tx, event).await?;
            }
            tx.commit().await?;
        }
        sqlx::query(
            "INSERT INTO remotelock_event_cursor (read_from) VALUES ($1)
             ON CONFLICT (id) DO UPDATE SET read_from = GREATEST(remotelock_event_cursor.read_from, $1),
                 updated_at = now()",
        )
        .bind(newest - OVERLAP)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where the last poll got to; a first poll looks back one interval and the overlap.
    async fn read_from(&self) -> Result<DateTime<Utc>, sqlx::Error> {
        let stored: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT read_from FROM remotelock_event_cursor")
                .fetch_optional(&self.pool)
                .await?;
        let every = chrono::Duration::from_std(self.every).unwrap_or(OVERLAP);
        Ok(stored.unwrap_or_else(|| Utc::now() - every - OVERLAP))
    }
}

/// RemoteLock's ids are UUID strings; any other string still names one event.
fn event_uuid(id: &str) -> Uuid {
    id.parse().unwrap_or_else(|_| {
        Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("remotelock:event:{id}").as_bytes(),
        )
    })
}

async fn handle(tx: &mut Transaction<'_, Postgres>, event: &Event) -> Result<(), sqlx::Error> {
    let (Some("access_guest"), Some(guest)) = (
        event.associated_resource_type.as_deref(),
        event.associated_resource_id.as_deref(),
    ) else {
        return Ok(());
    };
    let booking: Option<(BookingId, PinState, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT p.booking_id, p.state, b.starts_at, b.ends_at FROM booking_pins p
         JOIN bookings b ON b.booking_id = p.booking_id
         WHERE p.guest_id = $1 FOR UPDATE OF p",
    )
    .bind(guest)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((booking_id, state, starts_at, ends_at)) = booking else {
        return Ok(()); // Not a guest lockbridge made.
    };
    let lock = event.publisher_id.as_deref().unwrap_or("its lock");
    let why = event.status_info.as_deref().unwrap_or("no reason given");
    if why.contains("pin_conflict") && state == PinState::Issued {
        let detail = format!(
            "lock {lock} refused the PIN as already used on it when it synced ({why}): \
             giving the guest another PIN"
        );
        store::history(tx, &booking_id, state, &detail).await?;
        let window = BookingWindow::new(starts_at, ends_at).expect("the schema checks the window");
        provisioning::request_new_pin(tx, &booking_id, &window).await?;
        tracing::warn!(%booking_id, %lock, "PIN conflict reported at sync; choosing another PIN");
    } else {
        let detail = format!("lock {lock} could not take the PIN when it synced ({why})");
        store::history(tx, &booking_id, state, &detail).await?;
    }
    Ok(())
}
