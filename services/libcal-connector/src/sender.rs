//! Takes each revision intake does not have yet to it, soonest booking first, several at
//! once. What intake cannot take now (it is down, or does not know the space yet) waits with
//! backoff in the table, so it survives a restart; what it refuses for good is kept with why.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use futures_util::{StreamExt, stream};
use lockbridge_runtime::telemetry::error_chain;
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    intake::{Intake, Outcome, Unavailable},
    state::{self, Unsent},
};

/// Writes in flight to intake at once.
const CONCURRENCY: usize = 8;
const BATCH: i64 = 64;
/// The longest wait between two tries of one booking, and between two looks at the table.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const IDLE_LOOK: Duration = Duration::from_secs(60);

pub struct Sender {
    pub pool: PgPool,
    pub intake: Intake,
    pub wake: Arc<Notify>,
    pub catalogue_due: Arc<AtomicBool>,
}

/// How long a booking waits after `attempts` failed tries: doubling from a second, with
/// jitter so that many bookings deferred together do not return together.
fn backoff(attempts: i32) -> Duration {
    let base = Duration::from_secs(1u64 << attempts.clamp(0, 9) as u32).min(MAX_BACKOFF);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

impl Sender {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let wait = match self.round().await {
                Ok(0) => self.idle_wait().await,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "the connector's database failed; sending waits");
                    Duration::from_secs(5)
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Until the next deferred booking is due, at most a minute.
    async fn idle_wait(&self) -> Duration {
        match state::next_attempt(&self.pool).await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(IDLE_LOOK),
            _ => IDLE_LOOK,
        }
        .max(Duration::from_millis(50))
    }

    /// Sends one batch; answers how many were due.
    async fn round(&self) -> Result<usize, sqlx::Error> {
        let due = state::unsent(&self.pool, BATCH).await?;
        let count = due.len();
        let results: Vec<Result<Option<Unavailable>, sqlx::Error>> = stream::iter(due)
            .map(|unsent| self.send(unsent))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut unavailable = None;
        let mut waiting = 0;
        for result in results {
            if let Some(error) = result? {
                waiting += 1;
                unavailable.get_or_insert(error);
            }
        }
        if let Some(error) = unavailable {
            tracing::warn!(error = %error_chain(&error), waiting, "booking-intake cannot take bookings now; they wait");
            return Ok(0);
        }
        Ok(count)
    }

    /// Sends one revision; `Some` when intake was unavailable (the booking is deferred).
    async fn send(&self, unsent: Unsent) -> Result<Option<Unavailable>, sqlx::Error> {
        let Unsent {
            booking_id,
            mut body,
            revision,
            attempts,
        } = unsent;
        body["revision"] = Value::from(revision);
        let outcome = match self.intake.put_booking(&booking_id, &body).await {
            Ok(outcome) => outcome,
            Err(error) => {
                state::defer(&self.pool, &booking_id, backoff(attempts)).await?;
                return Ok(Some(error));
            }
        };
        match outcome {
            Outcome::Accepted => state::sent(&self.pool, &booking_id, revision).await?,
            Outcome::Behind => match self.intake.revision(&booking_id).await {
                Ok(Some(theirs)) => {
                    tracing::info!(%booking_id, ours = revision, theirs, "booking-intake has a later revision; what LibCal says now is sent above it");
                    state::overtake(&self.pool, &booking_id, theirs).await?;
                }
                Ok(None) => state::defer(&self.pool, &booking_id, backoff(attempts)).await?,
                Err(error) => {
                    state::defer(&self.pool, &booking_id, backoff(attempts)).await?;
                    return Ok(Some(error));
                }
            },
            Outcome::UnknownSpace => {
                self.catalogue_due.store(true, Ordering::SeqCst);
                state::defer(&self.pool, &booking_id, backoff(attempts)).await?;
            }
            Outcome::Refused(reason) => {
                tracing::warn!(%booking_id, revision, %reason, "booking-intake refused a LibCal booking; it is sent again when LibCal changes it");
                state::refused(&self.pool, &booking_id, revision, &reason).await?;
            }
        }
        Ok(None)
    }
}
