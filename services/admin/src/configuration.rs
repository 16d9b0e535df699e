//! admin's settings: the sections every service reads, `remotelock`, `admin` and `retention`.
//! Those of the other services are not parsed here.

use std::{net::SocketAddr, time::Duration};

use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_retention::RetentionSettings;
use lockbridge_runtime::configuration::{self, Credential, RANDOM_SECRET};
use lockbridge_sealing::pins::PinKeySettings;
use secrecy::SecretString;
use serde::Deserialize;

pub type Settings = configuration::Settings<Sections>;

/// The sections only admin reads (`remotelock` it shares with the lock-provisioner).
#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub remotelock: RemoteLockSettings,
    pub admin: AdminSettings,
    pub pins: PinKeySettings,
    #[serde(default)]
    pub locks: LockWarnSettings,
    /// What applies when the Settings page sets nothing (read to say so, and to show it).
    pub provisioner: ConfiguredWindow,
    pub alerts: ConfiguredAlerts,
    /// The admin runs the retention passes.
    pub retention: RetentionSettings,
}

/// The lock-provisioner's committed settings the Settings page can override.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ConfiguredWindow {
    #[serde(with = "humantime_serde")]
    pub lead_time: Duration,
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    pub pin_digits: u8,
}

/// The notifier's committed staff alert recipients.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfiguredAlerts {
    pub recipients: String,
}

/// When the Locks page (and the navigation's badge) warns of a lock.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LockWarnSettings {
    /// A battery below this percentage warns.
    pub battery_warn_percent: u8,
    /// Only a lock with a booking starting within this long warns: a lock nobody needs soon
    /// can wait for its round.
    #[serde(with = "humantime_serde")]
    pub warn_within: Duration,
    /// How often the locks' health is looked at for alerts (one RemoteLock request each).
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for LockWarnSettings {
    fn default() -> Self {
        Self {
            battery_warn_percent: 20,
            warn_within: Duration::from_secs(2 * 24 * 3600),
            check_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// Empty until set: see [`API_TOKEN`].
    #[serde(default)]
    pub api_token: SecretString,
    /// The staff UI's session cookie is `Secure` (sent over HTTPS only); the local demo over
    /// plain http turns it off.
    pub cookie_secure: bool,
}

pub const API_TOKEN: Credential = Credential {
    setting: "admin.api_token",
    remedy: RANDOM_SECRET,
};
