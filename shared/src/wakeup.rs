//! Waking a worker when PostgreSQL `NOTIFY`s its channel, with a timeout as the safety net for
//! a notification lost while the listener was reconnecting.

use std::time::Duration;

use futures_util::TryFutureExt;
use sqlx::{
    PgPool,
    postgres::{PgListener, PgPoolOptions},
};

pub struct Wakeup {
    pool: PgPool,
    channel: String,
    listener: Option<PgListener>,
}

impl Wakeup {
    pub fn new(pool: PgPool, channel: String) -> Self {
        Self {
            pool,
            channel,
            listener: None,
        }
    }

    /// Returns on a notification or after `timeout`, whichever comes first. Subscribe with
    /// [`Wakeup::subscribe`] before looking for work, so a notification in between is not lost.
    pub async fn wait(&mut self, timeout: Duration) {
        match &mut self.listener {
            Some(listener) => {
                if let Ok(Err(error)) = tokio::time::timeout(timeout, listener.recv()).await {
                    tracing::warn!(channel = %self.channel, %error, "lost the notification listener");
                    self.listener = None;
                }
            }
            None => tokio::time::sleep(timeout).await,
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
                tracing::warn!(channel = %self.channel, %error, "cannot listen for notifications; polling");
                return;
            }
        };
        if listener.listen(&self.channel).await.is_ok() {
            self.listener = Some(listener);
        }
    }
}
