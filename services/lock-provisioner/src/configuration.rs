//! lock-provisioner's settings: the sections every service reads, `remotelock`, `pins`,
//! `provisioner`, `sync` and `reconcile`. Those of the other services are not parsed here.

use std::{net::SocketAddr, time::Duration};

use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_runtime::configuration;
use lockbridge_sealing::pins::PinKeySettings;
use serde::Deserialize;

pub type Settings = configuration::Settings<Sections>;

/// The sections only the lock-provisioner reads (`remotelock` it shares with admin).
#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub remotelock: RemoteLockSettings,
    pub pins: PinKeySettings,
    pub provisioner: ProvisionerSettings,
    pub sync: SyncSettings,
    pub reconcile: ReconcileSettings,
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
    /// How often the provisioner reads RemoteLock's events (one request when nothing new
    /// happened), webhooks or not.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A PIN the lock has not confirmed this long before it must work raises a staff alert…
    #[serde(with = "humantime_serde")]
    pub alert_before: Duration,
    /// … and again, escalated, this long before.
    #[serde(with = "humantime_serde")]
    pub escalate_before: Duration,
}

/// The drift pass (drift/): comparing RemoteLock with what lockbridge left there.
#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    /// How often a pass runs (one at a time across every provisioner process).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}
