//! lock-provisioner's settings: the sections every service reads, `remotelock`, `provisioner`
//! and `sync`. Those of the other services are not parsed here.

use std::{net::SocketAddr, time::Duration};

use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_runtime::configuration;
use serde::Deserialize;

pub type Settings = configuration::Settings<Sections>;

/// The sections only the lock-provisioner reads (`remotelock` it shares with admin).
#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub remotelock: RemoteLockSettings,
    pub provisioner: ProvisionerSettings,
    pub sync: SyncSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProvisionerSettings {
    pub listen: SocketAddr,
    /// How long before the booking starts the PIN begins to work.
    #[serde(with = "humantime_serde")]
    pub lead_time: Duration,
    /// How long after the booking ends the PIN keeps working.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    pub pin_digits: u8,
    /// Bookings provisioned at once by one process (RemoteLock's rate limit is shared).
    pub concurrency: usize,
    /// A booking whose PIN starts to work within this long (or already works) is urgent: its
    /// RemoteLock requests come from the share of each window held back from the backlog.
    #[serde(with = "humantime_serde")]
    pub urgent_within: Duration,
}

/// Following what the locks report after the API calls succeeded (remotelock-api.md §3.5:
/// some PIN conflicts only show when the lock syncs).
#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    /// How often the provisioner reads RemoteLock's sync failures: one request each time.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}
