//! The retention passes (crates/retention): one every `retention.interval`, the first at
//! start. Several admin processes take turns through the pass's advisory lock.

use lockbridge_retention::{Mode, RetentionSettings, run_exclusive};
use lockbridge_runtime::telemetry::error_chain;
use sqlx::PgPool;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub(crate) struct RetentionPasses {
    pub pool: PgPool,
    pub settings: RetentionSettings,
}

impl RetentionPasses {
    /// Runs until `shutdown`; a pass that fails (the database away) is tried again at the next
    /// interval, so the task never dies of it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.settings.interval);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = every.tick() => {}
            }
            // Counts per table only: never a booking, a patron or a PIN.
            match run_exclusive(&self.pool, &self.settings, Mode::Apply).await {
                Ok(Some(counts)) => {
                    tracing::info!(
                        rows = counts.total(),
                        "retention pass: {}",
                        counts.summary()
                    );
                }
                Ok(None) => tracing::debug!("another process is running the retention pass"),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "retention pass failed; trying again at the next interval");
                }
            }
        }
        tracing::info!("retention passes stopped");
    }
}
