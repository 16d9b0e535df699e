//! Everything the request handlers share.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{NaiveDateTime, Utc};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::catalog::Catalog;
use crate::config::SimConfig;
use crate::directory::{AccessSnapshot, Directory, GuestSnapshot};
use crate::faults::FaultQueue;
use crate::pins::PinPolicy;
use crate::rate_limit::RateLimiter;
use crate::request_log::RequestLog;
use crate::tokens::Tokens;

pub type AppState = Arc<SimState>;

pub struct SimState {
    pub config: SimConfig,
    /// Where the simulator listens, e.g. `http://127.0.0.1:4010/`.
    pub base_url: Url,
    pub catalog: Catalog,
    pub pins: PinPolicy,
    directory: Mutex<Directory>,
    pub tokens: Tokens,
    pub rate_limiter: RateLimiter,
    pub faults: FaultQueue,
    pub requests: RequestLog,
    /// Cancelled on shutdown; also releases requests held by a `Timeout` fault.
    pub shutdown: CancellationToken,
}

impl SimState {
    pub fn new(config: SimConfig, base_url: Url) -> Self {
        Self {
            base_url,
            catalog: Catalog::seeded(Utc::now()),
            pins: PinPolicy::new(config.pin_digits.clone()),
            directory: Mutex::default(),
            tokens: Tokens::new(config.access_token_ttl),
            rate_limiter: RateLimiter::new(config.rate_limit_per_minute),
            faults: FaultQueue::default(),
            requests: RequestLog::default(),
            shutdown: CancellationToken::new(),
            config,
        }
    }

    /// Held for the whole of a handler's check-then-write, which keeps PINs unique.
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().expect("directory poisoned")
    }

    /// Wall-clock "now" in the zone that decides guest status.
    pub fn local_now(&self) -> NaiveDateTime {
        Utc::now()
            .with_timezone(&self.catalog.primary_time_zone())
            .naive_local()
    }

    pub fn guests(&self) -> Vec<GuestSnapshot> {
        self.directory().guest_snapshots(self.local_now())
    }

    pub fn accesses(&self) -> Vec<AccessSnapshot> {
        self.directory().access_snapshots()
    }
}
