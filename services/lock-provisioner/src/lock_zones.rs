//! The time zone each lock reads guest windows in: its RemoteLock location's zone. Looked up
//! once an hour per lock, since every lookup spends the account's rate limit.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use lockbridge_domain::{LockId, TimeZone};
use lockbridge_remotelock::{RemoteLockError, Work};
use tokio::sync::Mutex;

const TTL: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub(crate) struct LockZones {
    cache: Mutex<HashMap<LockId, (Option<TimeZone>, Instant)>>,
}

impl LockZones {
    /// `None` when the lock belongs to no location; the caller falls back to the booking's.
    /// A lookup is made for `work`, at its urgency.
    pub async fn zone_of(
        &self,
        work: &Work,
        lock: &LockId,
    ) -> Result<Option<TimeZone>, RemoteLockError> {
        if let Some((zone, at)) = self.cache.lock().await.get(lock)
            && at.elapsed() < TTL
        {
            return Ok(*zone);
        }
        let device = work.device(lock).await?;
        let zone = match &device.location_id {
            Some(location_id) => work
                .locations()
                .await?
                .into_iter()
                .find(|l| &l.id == location_id)
                .map(|l| l.time_zone),
            None => None,
        };
        self.cache
            .lock()
            .await
            .insert(lock.clone(), (zone, Instant::now()));
        Ok(zone)
    }
}
