//! The time zone each lock reads guest windows in: its RemoteLock location's zone. Looked up
//! once an hour per lock, since every lookup spends the account's rate limit.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use lockbridge_domain::{LockId, TimeZone};
use lockbridge_remotelock::{RemoteLockError, Work};
use tokio::sync::Mutex;

const TTL: Duration = Duration::from_secs(3600);

/// A lock's zone as last looked up, and when.
type Entry = Option<(Option<TimeZone>, Instant)>;

#[derive(Default)]
pub(crate) struct LockZones {
    /// One cell per lock, locked while its zone is looked up: jobs of the same lock that start
    /// together wait for the one lookup instead of each spending requests on it.
    cells: std::sync::Mutex<HashMap<LockId, Arc<Mutex<Entry>>>>,
}

impl LockZones {
    /// `None` when the lock belongs to no location; the caller falls back to the booking's.
    /// A lookup is made for `work`, at its urgency.
    pub async fn zone_of(
        &self,
        work: &Work,
        lock: &LockId,
    ) -> Result<Option<TimeZone>, RemoteLockError> {
        let cell = Arc::clone(
            self.cells
                .lock()
                .expect("lock zones poisoned")
                .entry(lock.clone())
                .or_default(),
        );
        let mut entry = cell.lock().await;
        if let Some((zone, at)) = *entry
            && at.elapsed() < TTL
        {
            return Ok(zone);
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
        *entry = Some((zone, Instant::now()));
        Ok(zone)
    }
}
