//! Waking a worker when there may be work for it, with a timeout as the safety net.
//!
//! Two ways to wake a channel (`jobs_<queue>`, `outbox_<producer>`):
//! - [`Channel::ring`], after the commit that made the work, wakes the workers of this process
//!   and costs nothing. The hot paths use it: a consumer queueing a job its own process runs,
//!   intake storing an event its own relay publishes.
//! - [`Channel::notify`], inside the transaction, wakes every process when it commits, through
//!   PostgreSQL `NOTIFY`. PostgreSQL serializes the commits of all transactions that notify
//!   (a database-wide lock is held from the notification queue insert through the commit's
//!   WAL flush; a one-row insert fell from ~19,000 to ~4,500 transactions/s here with a
//!   notifying trigger), so only rare work crossing processes uses it: staff actions, alerts.
//!
//! Work that a busy process leaves is found by the other processes' polls.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex, Weak},
    time::Duration,
};

use futures_util::TryFutureExt;
use sqlx::{
    PgExecutor, PgPool,
    postgres::{PgListener, PgPoolOptions},
};
use tokio::sync::Notify;

/// The bells of this process, by channel: one per waiting worker, so a ring reaches each.
static BELLS: LazyLock<Mutex<HashMap<String, Vec<Weak<Notify>>>>> = LazyLock::new(Mutex::default);

/// A channel on which workers wait for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel(String);

impl Channel {
    pub fn jobs(queue: &str) -> Self {
        Self(format!("jobs_{queue}"))
    }

    pub fn outbox(producer: &str) -> Self {
        Self(format!("outbox_{producer}"))
    }

    /// Work of another kind, named by its own crate (e.g. RemoteLock events a webhook stored).
    pub fn named(name: &str) -> Self {
        Self(name.to_owned())
    }

    /// Wakes this process's workers on the channel. Call it after the commit: a worker woken
    /// earlier does not see the work yet and goes back to sleep.
    pub fn ring(&self) {
        let mut bells = BELLS.lock().expect("bells poisoned");
        if let Some(waiting) = bells.get_mut(&self.0) {
            // A bell whose worker is gone is dropped here rather than on the worker's way out.
            waiting.retain(|bell| match bell.upgrade() {
                Some(bell) => {
                    // Stores a permit when the worker is busy, so a ring is never lost.
                    bell.notify_one();
                    true
                }
                None => false,
            });
        }
    }

    /// Wakes the channel's workers in every process: once the transaction commits when `db` is
    /// one, else at once (see the module note for why the hot paths ring instead).
    pub async fn notify(&self, db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.0)
            .execute(db)
            .await?;
        Ok(())
    }
}

pub struct Wakeup {
    pool: PgPool,
    channel: Channel,
    bell: Arc<Notify>,
    listener: Option<PgListener>,
}

impl Wakeup {
    pub fn new(pool: PgPool, channel: Channel) -> Self {
        let bell = Arc::new(Notify::new());
        BELLS
            .lock()
            .expect("bells poisoned")
            .entry(channel.0.clone())
            .or_default()
            .push(Arc::downgrade(&bell));
        Self {
            pool,
            channel,
            bell,
            listener: None,
        }
    }

    /// Returns on a ring, a notification or after `timeout`, whichever comes first. Subscribe
    /// with [`Wakeup::subscribe`] before looking for work, so a notification in between is not
    /// lost (a ring in between is kept by the bell).
    pub async fn wait(&mut self, timeout: Duration) {
        let heard = async {
            match &mut self.listener {
                Some(listener) => listener.recv().await.map(drop),
                None => std::future::pending().await,
            }
        };
        let heard = tokio::select! {
            () = self.bell.notified() => Ok(()),
            heard = heard => heard,
            () = tokio::time::sleep(timeout) => Ok(()),
        };
        if let Err(error) = heard {
            tracing::warn!(channel = %self.channel.0, %error, "lost the notification listener");
            self.listener = None;
        }
    }

    /// (Re)subscribes if needed. Failure is not fatal: the worker then polls.
    pub async fn subscribe(&mut self) {
        if self.listener.is_some() {
            return;
        }
        // A pool of its own: a listener holds its connection for good, and must not take one
        // of the slots the service's queries share.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*self.pool.connect_options()).clone());
        let mut listener = match own
            .and_then(|pool| async move { PgListener::connect_with(&pool).await })
            .await
        {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(channel = %self.channel.0, %error, "cannot listen for notifications; polling");
                return;
            }
        };
        if listener.listen(&self.channel.0).await.is_ok() {
            self.listener = Some(listener);
        }
    }
}
