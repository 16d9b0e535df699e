//! Staff are told of a PIN its lock has not confirmed while the booking comes close: first
//! `sync.alert_before` the PIN must work, then again, escalated, `sync.escalate_before` —
//! rather than finding out when the patron stands at a door that stays shut.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingId, PinState};
use lockbridge_runtime::telemetry::error_chain;
use lockbridge_work::{
    failures::{self, FailureKind, Report, RetryWith},
    provisioning,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub(crate) struct SyncAlerts {
    pub pool: PgPool,
    /// How often the PINs are looked at (`sync.poll_interval`, well under the escalation's
    /// lead).
    pub every: Duration,
    pub alert_before: Duration,
    pub escalate_before: Duration,
}

#[derive(sqlx::FromRow)]
struct Unconfirmed {
    booking_id: BookingId,
    lock_id: Option<String>,
    valid_from: DateTime<Utc>,
    sync_error: Option<String>,
    /// 1: the first alert is due; 2: the escalation is.
    step: i16,
}

impl SyncAlerts {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(error) = self.alert_due().await {
                tracing::warn!(error = %error_chain(&error), "cannot look for PINs not on their locks");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.every) => {},
            }
        }
        tracing::info!("sync alerts stopped");
    }

    /// Alerts each issued PIN not confirmed on its lock whose next alert is due, once per step.
    pub(crate) async fn alert_due(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<Unconfirmed> = sqlx::query_as(
            "SELECT p.booking_id, p.lock_id, p.valid_from, p.sync_error,
                    CASE WHEN p.valid_from - $2 <= now() THEN 2 ELSE 1 END::int2 AS step
             FROM booking_pins p JOIN bookings b ON b.booking_id = p.booking_id
             WHERE p.state = 'issued' AND b.status = 'confirmed'
               AND p.valid_until > now() AND p.valid_from - $1 <= now()
               AND (p.synced_at IS NULL OR p.synced_at < p.pin_sent_at - $3)
               AND p.sync_alerts_sent < CASE WHEN p.valid_from - $2 <= now() THEN 2 ELSE 1 END
             FOR UPDATE OF p SKIP LOCKED",
        )
        .bind(self.alert_before)
        .bind(self.escalate_before)
        .bind(PinState::CLOCK_SKEW)
        .fetch_all(&mut *tx)
        .await?;
        for pin in &due {
            let lock = pin.lock_id.as_deref().unwrap_or("its lock");
            let minutes = (pin.valid_from - Utc::now()).num_minutes();
            let when = if minutes > 0 {
                format!("it must work in {minutes} minutes")
            } else {
                "it should be working already".to_owned()
            };
            let last = pin
                .sync_error
                .as_ref()
                .map_or_else(String::new, |why| format!(" (its last report: {why})"));
            let reason =
                format!("lock {lock} has not confirmed it holds the PIN{last}, and {when}");
            let report = Report {
                kind: FailureKind::PinNotSynced,
                booking_id: Some(&pin.booking_id),
                reason: &reason,
                attempts: i32::from(pin.step),
                retry: RetryWith::Job {
                    queue: provisioning::QUEUE,
                    key: pin.booking_id.as_str(),
                },
            };
            failures::escalate(&mut tx, report, pin.step).await?;
            sqlx::query("UPDATE booking_pins SET sync_alerts_sent = $2 WHERE booking_id = $1")
                .bind(&pin.booking_id)
                .bind(pin.step)
                .execute(&mut *tx)
                .await?;
            tracing::warn!(booking_id = %pin.booking_id, %lock, step = pin.step, "PIN not confirmed on its lock as the booking nears");
        }
        tx.commit().await
    }
}
