//! Staff are alerted of a lock that needs a person while bookings of its space start within
//! `locks.warn_within`: offline (it cannot take new PINs), or with a battery below
//! `locks.battery_warn_percent`. One alert per lock and condition: the failure stays open,
//! updated, until the lock is well again or no booking needs it soon, and then resolves.
//!
//! What the lock last reported by event (`lock_health`, kept by the lock-provisioner) is
//! brought up to date with RemoteLock's device list at each look, one request per look.

use chrono::Utc;
use lockbridge_domain::LockId;
use lockbridge_remotelock::{Device, RemoteLockClient, Urgency, events};
use lockbridge_runtime::telemetry::error_chain;
use lockbridge_work::failures::{self, FailureKind};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::LockWarnSettings,
    lock_health::{LinkedLock, linked_locks},
};

pub(crate) struct LockWatch {
    pub pool: PgPool,
    pub remotelock: RemoteLockClient,
    pub settings: LockWarnSettings,
}

/// A lock's health as lockbridge knows it now.
#[derive(sqlx::FromRow)]
struct Health {
    lock_id: LockId,
    connected: Option<bool>,
    power_level: Option<i32>,
}

impl LockWatch {
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(error) = self.look().await {
                tracing::warn!(error = %error_chain(&error), "cannot look at the locks' health");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.settings.check_interval) => {},
            }
        }
        tracing::info!("lock watch stopped");
    }

    async fn look(&self) -> Result<(), sqlx::Error> {
        // Routine: staff pages and bookings go first; a read that fails leaves the events.
        match self.remotelock.for_work(Urgency::Routine).locks().await {
            Ok(devices) => self.record(&devices).await?,
            Err(error) => {
                tracing::debug!(error = %error_chain(&error), "lock health from events only");
            }
        }
        let linked = linked_locks(&self.pool, self.settings.warn_within).await?;
        let health: Vec<Health> =
            sqlx::query_as("SELECT lock_id, connected, power_level FROM lock_health")
                .fetch_all(&self.pool)
                .await?;
        let mut tx = self.pool.begin().await?;
        for link in &linked {
            let known = health.iter().find(|h| h.lock_id == link.lock_id);
            let offline = link.needed_soon && known.is_some_and(|h| h.connected == Some(false));
            let low = known.and_then(|h| h.power_level).filter(|level| {
                link.needed_soon && *level < i32::from(self.settings.battery_warn_percent)
            });
            let conditions = [
                (
                    FailureKind::LockOffline,
                    offline.then(|| offline_reason(link)),
                ),
                (
                    FailureKind::LockBatteryLow,
                    low.map(|level| low_reason(link, level)),
                ),
            ];
            for (kind, reason) in conditions {
                match reason {
                    Some(reason) => {
                        failures::report_lock(&mut tx, kind, &link.lock_id, &reason).await?
                    }
                    None => failures::resolve_lock(&mut *tx, kind, &link.lock_id).await?,
                }
            }
        }
        // A lock unlinked meanwhile needs no one either.
        sqlx::query(
            "UPDATE failures SET resolved_at = now(), updated_at = now()
             WHERE lock_id IS NOT NULL AND resolved_at IS NULL
               AND lock_id NOT IN (SELECT lock_id FROM lock_links)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Keeps what RemoteLock's device list says now.
    async fn record(&self, devices: &[Device]) -> Result<(), sqlx::Error> {
        let now = Utc::now();
        for device in devices {
            let power = device.power_level.map(i32::from);
            events::record_health(
                &self.pool,
                device.id.as_str(),
                (device.connected, power),
                now,
            )
            .await?;
        }
        Ok(())
    }
}

fn next_booking(link: &LinkedLock) -> String {
    let zone = lockbridge_domain::TimeZone::from_stored(&link.time_zone);
    link.next_starts_at.map_or_else(String::new, |at| {
        format!(
            "; its next booking starts {} ({})",
            zone.local(at).format("%a %-d %b %H:%M"),
            zone.name()
        )
    })
}

fn offline_reason(link: &LinkedLock) -> String {
    format!(
        "the lock of {} ({}) is offline: it cannot take new PINs{}",
        link.space_name,
        link.lock_id,
        next_booking(link)
    )
}

fn low_reason(link: &LinkedLock, level: i32) -> String {
    format!(
        "the battery of the lock of {} ({}) is at {level}%{}",
        link.space_name,
        link.lock_id,
        next_booking(link)
    )
}
