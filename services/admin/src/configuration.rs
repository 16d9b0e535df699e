//! admin's settings: the sections every service reads, `remotelock` and `admin`. Those of the
//! other services are not parsed here.

use std::net::SocketAddr;

use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_runtime::configuration::{self, Credential, RANDOM_SECRET};
use secrecy::SecretString;
use serde::Deserialize;

pub type Settings = configuration::Settings<Sections>;

/// The sections only admin reads (`remotelock` it shares with the lock-provisioner).
#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub remotelock: RemoteLockSettings,
    pub admin: AdminSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// Empty until set: see [`API_TOKEN`].
    #[serde(default)]
    pub api_token: SecretString,
}

pub const API_TOKEN: Credential = Credential {
    setting: "admin.api_token",
    remedy: RANDOM_SECRET,
};
