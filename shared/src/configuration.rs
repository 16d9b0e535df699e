//! Layered settings: committed defaults, an optional local file, then
//! `LOCKBRIDGE__<SECTION>__<KEY>` environment variables (design §3.3).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::telemetry::LogSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub remotelock: RemoteLockSettings,
    pub smtp: SmtpSettings,
    pub intake: IntakeSettings,
    pub admin: AdminSettings,
    pub provisioner: ProvisionerSettings,
    pub notifier: NotifierSettings,
    pub alerts: AlertSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Holds the password, so it is a secret: never printed.
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    pub url: SecretString,
    pub prefetch: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RemoteLockSettings {
    pub api_url: Url,
    pub oauth_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_url: Url,
    pub token_encryption_key: SecretString,
    pub dashboard_url: Url,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    /// `smtp://host:port`, `smtps://user:pass@host` … as lettre's `from_url` reads it.
    pub url: SecretString,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntakeSettings {
    pub listen: SocketAddr,
    /// One bearer token per upstream source, keyed by the source's name.
    pub tokens: BTreeMap<String, SecretString>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub api_token: SecretString,
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
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotifierSettings {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertSettings {
    /// Staff addresses emailed each failure that needs a person, comma-separated; empty: none.
    pub recipients: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the configuration is invalid")]
pub struct ConfigurationError(#[from] config::ConfigError);

/// Where the committed defaults live: `LOCKBRIDGE_CONFIG_DIR`, else `config/` under the
/// current directory, else the repository's `config/` (for binaries run from elsewhere).
fn config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOCKBRIDGE_CONFIG_DIR") {
        return dir.into();
    }
    let here = PathBuf::from("config");
    if here.join("default.toml").exists() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"))
}

impl Settings {
    /// Reads defaults, `config/local.toml` (or the file named by `LOCKBRIDGE_CONFIG`), then
    /// the environment.
    pub fn load() -> Result<Self, ConfigurationError> {
        Self::builder()?
            .build()?
            .try_deserialize()
            .map_err(Into::into)
    }

    /// The layered sources before they are read, so tests can add overrides on top.
    pub fn builder()
    -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigurationError> {
        let dir = config_dir();
        let local = std::env::var_os("LOCKBRIDGE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("local.toml"));
        Ok(config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(true))
            .add_source(config::File::from(local).required(false))
            .add_source(
                config::Environment::with_prefix("LOCKBRIDGE")
                    .prefix_separator("__")
                    .separator("__"),
            ))
    }
}
