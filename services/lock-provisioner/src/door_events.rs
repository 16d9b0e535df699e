//! What the doors report, applied to what lockbridge knows (issue 10). RemoteLock accepting a
//! guest does not put its PIN on the lock: a Wi-Fi lock takes it when it next wakes up, and
//! says so later with `access_person_synced` — or `access_person_sync_failed`, a PIN conflict
//! among the reasons (remotelock-api.md §3.5, §3.8). Keypad use and the locks' health arrive
//! the same way.
//!
//! Events come by webhook (stored by the admin) and by polling `GET /events` here, always: the
//! poll is the safety net and the way back after a webhook outage. Both store into
//! `remotelock_events`, once per event id; this task then applies what is stored and not yet
//! applied, in the order it happened, each in its own transaction with what it changes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingId, BookingWindow, PinState};
use lockbridge_remotelock::{
    RemoteLockClient, RemoteLockError, Urgency,
    events::{self, Via},
};
use lockbridge_runtime::{
    telemetry::error_chain,
    wakeup::{Channel, Wakeup},
};
use lockbridge_work::{
    failures::{self, FailureKind, Report, RetryWith},
    provisioning,
};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::store;

/// Events created this long before the newest one read are read again: RemoteLock's clock and
/// ours differ, and `created_at` has whole seconds. Stored ones are skipped by id.
const OVERLAP: chrono::Duration = chrono::Duration::minutes(2);
/// Events applied per transaction.
const BATCH: i64 = 100;

pub(crate) struct DoorEvents {
    pub pool: PgPool,
    pub client: RemoteLockClient,
    /// `sync.poll_interval`.
    pub poll_every: Duration,
}

#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("database access failed")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    RemoteLock(#[from] RemoteLockError),
}

impl DoorEvents {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wakeup = Wakeup::new(self.pool.clone(), Channel::named(events::STORED_CHANNEL));
        let mut next_poll = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            wakeup.subscribe().await;
            if tokio::time::Instant::now() >= next_poll {
                if let Err(error) = self.poll().await {
                    // Not authorized, rate limited, RemoteLock down: the next poll tries
                    // again, and webhooks still arrive meanwhile.
                    tracing::warn!(error = %error_chain(&error), "cannot read RemoteLock's events");
                }
                next_poll = tokio::time::Instant::now() + self.poll_every;
            }
            if let Err(error) = self.apply_stored().await {
                tracing::warn!(error = %error_chain(&error), "cannot apply RemoteLock's events");
            }
            let until_poll = next_poll.saturating_duration_since(tokio::time::Instant::now());
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wakeup.wait(until_poll) => {},
            }
        }
        tracing::info!("door events stopped");
    }

    /// Stores the events created since the cursor.
    async fn poll(&self) -> Result<(), PollError> {
        let read_from = self.read_from().await?;
        // Routine: what an event calls for (a new PIN, a resend) is a job with its own urgency.
        let events = self
            .client
            .for_work(Urgency::Routine)
            .events_since(read_from)
            .await?;
        let Some(newest) = events.iter().map(|e| e.created_at).max() else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await?;
        let mut new = 0;
        for event in &events {
            new += u32::from(events::store(&mut *tx, event, Via::Poll).await?);
        }
        sqlx::query(
            "INSERT INTO remotelock_event_cursor (read_from) VALUES ($1)
             ON CONFLICT (id) DO UPDATE SET read_from = GREATEST(remotelock_event_cursor.read_from, $1),
                 updated_at = now()",
        )
        .bind(newest - OVERLAP)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::debug!(read = events.len(), new, "RemoteLock events polled");
        Ok(())
    }

    /// Where the last poll got to; a first poll looks back one interval and the overlap.
    async fn read_from(&self) -> Result<DateTime<Utc>, sqlx::Error> {
        let stored: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT read_from FROM remotelock_event_cursor")
                .fetch_optional(&self.pool)
                .await?;
        let every = chrono::Duration::from_std(self.poll_every).unwrap_or(OVERLAP);
        Ok(stored.unwrap_or_else(|| Utc::now() - every - OVERLAP))
    }

    /// Applies the stored events not applied yet, oldest first. Rows are locked as they are
    /// taken (`SKIP LOCKED`), so several provisioners share the work and apply each once.
    pub(crate) async fn apply_stored(&self) -> Result<(), sqlx::Error> {
        loop {
            let mut tx = self.pool.begin().await?;
            let stored: Vec<Stored> = sqlx::query_as(
                "SELECT event_id, kind, occurred_at, status, status_info, power_level, lock_id,
                        person_type, person_id
                 FROM remotelock_events WHERE applied_at IS NULL
                 ORDER BY occurred_at, created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            )
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if stored.is_empty() {
                return Ok(());
            }
            for event in &stored {
                let booking = apply(&mut tx, event).await?;
                sqlx::query(
                    "UPDATE remotelock_events SET applied_at = now(), booking_id = $2
                     WHERE event_id = $1",
                )
                .bind(&event.event_id)
                .bind(booking)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
}

#[derive(sqlx::FromRow)]
struct Stored {
    event_id: String,
    kind: String,
    occurred_at: DateTime<Utc>,
    status: Option<String>,
    status_info: Option<String>,
    power_level: Option<i32>,
    lock_id: Option<String>,
    person_type: Option<String>,
    person_id: Option<String>,
}

/// The booking whose guest an event is about, as lockbridge knows it.
#[derive(sqlx::FromRow)]
struct Guest {
    booking_id: BookingId,
    state: PinState,
    lock_id: Option<String>,
    pin_sent_at: Option<DateTime<Utc>>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl Guest {
    /// Whether the event is about the PIN and window sent last, on the lock sent to, rather
    /// than an earlier one the lock took or refused.
    fn is_current(&self, event: &Stored) -> bool {
        self.lock_id.as_deref() == event.lock_id.as_deref()
            && self
                .pin_sent_at
                .is_none_or(|sent| event.occurred_at >= sent - PinState::CLOCK_SKEW)
    }

    fn window(&self) -> BookingWindow {
        BookingWindow::new(self.starts_at, self.ends_at).expect("the schema checks the window")
    }
}

/// Applies one event; answers the booking it is about, for the activity it records.
async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    event: &Stored,
) -> Result<Option<BookingId>, sqlx::Error> {
    match event.kind.as_str() {
        "connectivity" | "power_level_low" | "battery_replaced" => {
            lock_health(tx, event).await?;
            return Ok(None);
        }
        _ => {}
    }
    let Some(guest) = guest(tx, event).await? else {
        return Ok(None); // About no one, or about a person lockbridge did not make.
    };
    match event.kind.as_str() {
        "access_person_synced" if guest.is_current(event) => synced(tx, &guest, event).await?,
        "access_person_sync_failed" if guest.is_current(event) => {
            sync_failed(tx, &guest, event).await?;
        }
        // Door use, and reports about an earlier PIN: activity of the booking, nothing more.
        _ => {}
    }
    Ok(Some(guest.booking_id))
}

async fn guest(
    tx: &mut Transaction<'_, Postgres>,
    event: &Stored,
) -> Result<Option<Guest>, sqlx::Error> {
    let (Some("access_guest"), Some(person)) = (event.person_type.as_deref(), &event.person_id)
    else {
        return Ok(None);
    };
    sqlx::query_as(
        "SELECT p.booking_id, p.state, p.lock_id, p.pin_sent_at, b.starts_at, b.ends_at
         FROM booking_pins p JOIN bookings b ON b.booking_id = p.booking_id
         WHERE p.guest_id = $1 FOR UPDATE OF p",
    )
    .bind(person)
    .fetch_optional(&mut **tx)
    .await
}

async fn synced(
    tx: &mut Transaction<'_, Postgres>,
    guest: &Guest,
    event: &Stored,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE booking_pins SET synced_at = $2, sync_error = NULL, resync_requested_at = NULL,
             sync_alerts_sent = 0, updated_at = now()
         WHERE booking_id = $1",
    )
    .bind(&guest.booking_id)
    .bind(event.occurred_at)
    .execute(&mut **tx)
    .await?;
    let lock = event.lock_id.as_deref().unwrap_or("its lock");
    let detail = format!("lock {lock} confirmed it holds the PIN");
    store::history(tx, &guest.booking_id, guest.state, &detail).await?;
    failures::resolve(
        &mut **tx,
        FailureKind::PinNotSynced,
        Some(&guest.booking_id),
    )
    .await?;
    metrics::counter!("lockbridge_pin_syncs_total", "outcome" => "synced").increment(1);
    Ok(())
}

/// A PIN conflict gets the guest another PIN (the patron is emailed it); any other reason
/// sends the same PIN to the lock again, and staff are told, since the door may not open.
async fn sync_failed(
    tx: &mut Transaction<'_, Postgres>,
    guest: &Guest,
    event: &Stored,
) -> Result<(), sqlx::Error> {
    let lock = event.lock_id.as_deref().unwrap_or("its lock");
    let why = event.status_info.as_deref().unwrap_or("no reason given");
    let booking_id = &guest.booking_id;
    if why.contains("pin_conflict") {
        let detail = format!(
            "lock {lock} refused the PIN as already used on it when it synced ({why}): \
             giving the guest another PIN"
        );
        store::history(tx, booking_id, guest.state, &detail).await?;
        provisioning::request_new_pin(tx, booking_id, &guest.window()).await?;
        tracing::warn!(%booking_id, %lock, "PIN conflict reported at sync; choosing another PIN");
        metrics::counter!("lockbridge_pin_syncs_total", "outcome" => "conflict").increment(1);
        return Ok(());
    }
    sqlx::query(
        "UPDATE booking_pins SET sync_error = $2, resync_requested_at = now(), updated_at = now()
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(why)
    .execute(&mut **tx)
    .await?;
    let detail =
        format!("lock {lock} could not take the PIN when it synced ({why}): sending it again");
    store::history(tx, booking_id, guest.state, &detail).await?;
    provisioning::request(tx, booking_id, &guest.window()).await?;
    let reason = format!(
        "lock {lock} reported it could not take the PIN ({why}); lockbridge is sending it again"
    );
    let key = booking_id.as_str();
    failures::report(
        tx,
        Report {
            kind: FailureKind::PinNotSynced,
            booking_id: Some(booking_id),
            reason: &reason,
            attempts: 1,
            retry: RetryWith::Job {
                queue: provisioning::QUEUE,
                key,
            },
        },
    )
    .await?;
    tracing::warn!(%booking_id, %lock, why, "a lock could not take a PIN; sending it again");
    metrics::counter!("lockbridge_pin_syncs_total", "outcome" => "failed").increment(1);
    Ok(())
}

/// Keeps the lock's battery and connection as its latest event says.
async fn lock_health(
    tx: &mut Transaction<'_, Postgres>,
    event: &Stored,
) -> Result<(), sqlx::Error> {
    let Some(lock) = &event.lock_id else {
        return Ok(());
    };
    let (connected, power) = match event.kind.as_str() {
        "connectivity" => (Some(event.status.as_deref() == Some("succeeded")), None),
        "battery_replaced" => (None, Some(100)),
        _ => (None, event.power_level),
    };
    events::record_health(&mut **tx, lock, (connected, power), event.occurred_at).await
}
