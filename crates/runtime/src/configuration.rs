//! Layered settings: committed defaults, an optional local file, then
//! `LOCKBRIDGE__<SECTION>__<KEY>` environment variables (design §3.3).
//!
//! The committed defaults hold no credential: a deployment sets its own, and each service checks
//! the ones it uses with [`Settings::require`] before it connects anything. The demo's credentials
//! are in `config/demo.toml`, published with the code, so they are refused outside demo mode.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::LazyLock, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::telemetry::LogSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Accepts the demo's published credentials; set only by `config/demo.toml`.
    #[serde(default)]
    pub demo: bool,
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
    pub sync: SyncSettings,
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
    /// Empty until set, as every credential here: see [`Settings::require`].
    #[serde(default)]
    pub client_secret: SecretString,
    pub redirect_url: Url,
    #[serde(default)]
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
    #[serde(default)]
    pub tokens: BTreeMap<String, SecretString>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    #[serde(default)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct NotifierSettings {
    pub listen: SocketAddr,
    /// Emails sent at once by one process.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertSettings {
    /// Staff addresses emailed each failure that needs a person, comma-separated; empty: none.
    pub recipients: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the configuration is invalid")]
pub struct ConfigurationError(#[from] config::ConfigError);

/// A credential some service cannot run without. None has a committed default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Every `intake.tokens.<source>`, of which there must be one at least.
    IntakeTokens,
    AdminApiToken,
    RemoteLockClientSecret,
    TokenEncryptionKey,
}

impl Credential {
    pub const ALL: [Self; 4] = [
        Self::IntakeTokens,
        Self::AdminApiToken,
        Self::RemoteLockClientSecret,
        Self::TokenEncryptionKey,
    ];

    /// The setting's name, as in the configuration files.
    pub fn setting(self) -> &'static str {
        match self {
            Self::IntakeTokens => "intake.tokens.<source>",
            Self::AdminApiToken => "admin.api_token",
            Self::RemoteLockClientSecret => "remotelock.client_secret",
            Self::TokenEncryptionKey => "remotelock.token_encryption_key",
        }
    }

    /// Where a value comes from, for the one sentence a service stops with.
    fn remedy(self) -> &'static str {
        match self {
            Self::IntakeTokens => {
                "set one per upstream source, generated with `openssl rand -base64 32`"
            }
            Self::RemoteLockClientSecret => "copy it from your RemoteLock OAuth application",
            Self::AdminApiToken | Self::TokenEncryptionKey => {
                "generate one with `openssl rand -base64 32`"
            }
        }
    }
}

/// Why a service refuses its credentials; each names the setting and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("{setting} is not set; {}", .credential.remedy())]
    Missing {
        setting: String,
        credential: Credential,
    },
    #[error(
        "{setting} holds a credential of the demo (config/demo.toml), which only demo mode \
         accepts; {}", .credential.remedy()
    )]
    DemoValue {
        setting: String,
        credential: Credential,
    },
}

/// The demo's credentials, published in the repository: the demo file itself, compiled in.
const DEMO_FILE: &str = include_str!("../../../config/demo.toml");

/// Every credential value the demo file sets.
static DEMO_VALUES: LazyLock<Vec<SecretString>> = LazyLock::new(|| {
    let demo = Settings::demo().expect("config/default.toml and config/demo.toml are valid");
    Credential::ALL
        .into_iter()
        .flat_map(|credential| demo.credential(credential))
        .map(|(_, value)| value.clone())
        .collect()
});

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
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
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
        let local = std::env::var_os("LOCKBRIDGE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| config_dir().join("local.toml"));
        Ok(Self::defaults()
            .add_source(config::File::from(local).required(false))
            .add_source(
                config::Environment::with_prefix("LOCKBRIDGE")
                    .prefix_separator("__")
                    .separator("__"),
            ))
    }

    /// The committed defaults alone: no local file, no environment (tests start from these).
    pub fn defaults() -> config::ConfigBuilder<config::builder::DefaultState> {
        config::Config::builder()
            .add_source(config::File::from(config_dir().join("default.toml")).required(true))
    }

    /// What `scripts/up` runs with: the defaults and `config/demo.toml`, as compiled in.
    pub fn demo() -> Result<Self, ConfigurationError> {
        let file = |text| config::File::from_str(text, config::FileFormat::Toml);
        config::Config::builder()
            .add_source(file(include_str!("../../../config/default.toml")))
            .add_source(file(DEMO_FILE))
            .build()?
            .try_deserialize()
            .map_err(Into::into)
    }

    /// Checks the credentials a service uses, before it connects anything: each must be set
    /// (empty is unset), and none may be one of the demo's unless in demo mode.
    pub fn require(&self, credentials: &[Credential]) -> Result<(), CredentialError> {
        for &credential in credentials {
            let values = self.credential(credential);
            if values.is_empty() {
                return Err(CredentialError::Missing {
                    setting: credential.setting().to_owned(),
                    credential,
                });
            }
            for (setting, value) in values {
                let value = value.expose_secret();
                if value.trim().is_empty() {
                    return Err(CredentialError::Missing {
                        setting,
                        credential,
                    });
                }
                if !self.demo && DEMO_VALUES.iter().any(|demo| demo.expose_secret() == value) {
                    return Err(CredentialError::DemoValue {
                        setting,
                        credential,
                    });
                }
            }
        }
        Ok(())
    }

    /// The settings that hold `credential`, by name, with their values.
    fn credential(&self, credential: Credential) -> Vec<(String, &SecretString)> {
        let one = |value| vec![(credential.setting().to_owned(), value)];
        match credential {
            Credential::IntakeTokens => self
                .intake
                .tokens
                .iter()
                .map(|(source, token)| (format!("intake.tokens.{source}"), token))
                .collect(),
            Credential::AdminApiToken => one(&self.admin.api_token),
            Credential::RemoteLockClientSecret => one(&self.remotelock.client_secret),
            Credential::TokenEncryptionKey => one(&self.remotelock.token_encryption_key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_file_turns_on_demo_mode_and_sets_every_credential() {
        let demo = Settings::demo().unwrap();
        assert!(demo.demo);
        assert_eq!(demo.require(&Credential::ALL), Ok(()));
        assert_eq!(DEMO_VALUES.len(), Credential::ALL.len());
    }

    #[test]
    fn a_demo_value_is_refused_under_any_setting_outside_demo_mode() {
        let mut settings = Settings::demo().unwrap();
        settings.demo = false;
        settings.admin.api_token = settings.intake.tokens["demo"].clone();
        assert_eq!(
            settings.require(&[Credential::AdminApiToken]),
            Err(CredentialError::DemoValue {
                setting: "admin.api_token".into(),
                credential: Credential::AdminApiToken,
            })
        );
    }
}
