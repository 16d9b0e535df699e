//! Layered settings: committed defaults, an optional local file, then
//! `LOCKBRIDGE__<SECTION>__<KEY>` environment variables (design §3.3).
//!
//! Every service reads the sections here (log, database, amqp) and its own, which it defines
//! in its own crate: a service never parses another's sections, so a bad setting of one does
//! not stop the others.
//!
//! The committed defaults hold no credential: a deployment sets its own, and each service checks
//! the ones it uses with [`Settings::require`] before it connects anything. The demo's credentials
//! are in `config/demo.toml`, published with the code, so they are refused outside demo mode.

use std::{path::PathBuf, sync::LazyLock};

use config::{Config, ConfigBuilder, ValueKind, builder::DefaultState};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};

use crate::telemetry::LogSettings;

/// A service's settings: the sections every service reads, and its own (`T`).
#[derive(Debug, Clone)]
pub struct Settings<T> {
    /// Accepts the demo's published credentials; set only by `config/demo.toml`.
    pub demo: bool,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    /// The service's own sections.
    pub own: T,
}

/// The sections every service reads, deserialized beside the service's own.
#[derive(Deserialize)]
struct Common {
    #[serde(default)]
    demo: bool,
    log: LogSettings,
    database: DatabaseSettings,
    amqp: AmqpSettings,
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

/// The layered sources before they are read: tests add overrides on top.
pub type Layers = ConfigBuilder<DefaultState>;

#[derive(Debug, thiserror::Error)]
#[error("the configuration is invalid")]
pub struct ConfigurationError(#[from] config::ConfigError);

/// A credential some service cannot run without. None has a committed default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    /// The setting's name, as in the configuration files.
    pub setting: &'static str,
    /// Where a value comes from, for the one sentence a service stops with.
    pub remedy: &'static str,
}

/// The remedy of a credential that is any 32 random bytes.
pub const RANDOM_SECRET: &str = "generate one with `openssl rand -base64 32`";

/// The values a credential is set to, by setting: most are one setting, some a family of
/// them (`intake.tokens.<source>`), of which there must be one at least.
#[derive(Debug, Clone)]
pub struct CredentialValues<'a> {
    pub credential: Credential,
    pub values: Vec<(String, &'a SecretString)>,
}

impl Credential {
    /// The one setting that holds this credential, as set.
    pub fn set_to(self, value: &SecretString) -> CredentialValues<'_> {
        CredentialValues {
            credential: self,
            values: vec![(self.setting.to_owned(), value)],
        }
    }
}

/// Why a service refuses its credentials; each names the setting and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("{setting} is not set; {remedy}")]
    Missing {
        setting: String,
        remedy: &'static str,
    },
    #[error(
        "{setting} holds a credential of the demo (config/demo.toml), which only demo mode \
         accepts; {remedy}"
    )]
    DemoValue {
        setting: String,
        remedy: &'static str,
    },
}

/// The demo's settings, published in the repository: the demo file itself, compiled in.
const DEMO_FILE: &str = include_str!("../../../config/demo.toml");
const DEFAULT_FILE: &str = include_str!("../../../config/default.toml");

/// Every text value the demo file sets: its credentials, whichever service reads them.
static DEMO_VALUES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let demo = Config::builder()
        .add_source(toml(DEMO_FILE))
        .build()
        .expect("config/demo.toml is valid");
    let mut values = Vec::new();
    let table = config::Source::collect(&demo).expect("a table");
    let mut pending: Vec<_> = table.into_values().collect();
    while let Some(value) = pending.pop() {
        match value.kind {
            ValueKind::String(text) => values.push(text),
            ValueKind::Table(table) => pending.extend(table.into_values()),
            ValueKind::Array(array) => pending.extend(array),
            _ => {}
        }
    }
    values
});

fn toml(text: &str) -> config::File<config::FileSourceString, config::FileFormat> {
    config::File::from_str(text, config::FileFormat::Toml)
}

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

/// The layered sources before they are read, so tests can add overrides on top: defaults,
/// `config/local.toml` (or the file named by `LOCKBRIDGE_CONFIG`), then the environment.
pub fn layers() -> Layers {
    let local = std::env::var_os("LOCKBRIDGE_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir().join("local.toml"));
    defaults()
        .add_source(config::File::from(local).required(false))
        .add_source(
            config::Environment::with_prefix("LOCKBRIDGE")
                .prefix_separator("__")
                .separator("__"),
        )
}

/// The committed defaults alone: no local file, no environment (tests start from these).
pub fn defaults() -> Layers {
    Config::builder()
        .add_source(config::File::from(config_dir().join("default.toml")).required(true))
}

impl<T: DeserializeOwned> Settings<T> {
    /// Reads the layers (see [`layers`]): the common sections and the service's own, no other.
    pub fn load() -> Result<Self, ConfigurationError> {
        Self::read(layers())
    }

    /// Reads the sections of `layers` this service uses.
    pub fn read(layers: Layers) -> Result<Self, ConfigurationError> {
        let config = layers.build()?;
        let Common {
            demo,
            log,
            database,
            amqp,
        } = config.clone().try_deserialize()?;
        Ok(Self {
            demo,
            log,
            database,
            amqp,
            own: config.try_deserialize()?,
        })
    }

    /// What `scripts/up` runs with: the defaults and `config/demo.toml`, as compiled in.
    pub fn demo() -> Result<Self, ConfigurationError> {
        Self::read(
            Config::builder()
                .add_source(toml(DEFAULT_FILE))
                .add_source(toml(DEMO_FILE)),
        )
    }
}

impl<T> Settings<T> {
    /// Checks the credentials a service uses, before it connects anything: each must be set
    /// (empty is unset), and none may be one of the demo's unless in demo mode.
    pub fn require(&self, credentials: &[CredentialValues<'_>]) -> Result<(), CredentialError> {
        for CredentialValues { credential, values } in credentials {
            let remedy = credential.remedy;
            if values.is_empty() {
                return Err(CredentialError::Missing {
                    setting: credential.setting.to_owned(),
                    remedy,
                });
            }
            for (setting, value) in values {
                let setting = setting.clone();
                let value = value.expose_secret();
                if value.trim().is_empty() {
                    return Err(CredentialError::Missing { setting, remedy });
                }
                if !self.demo && DEMO_VALUES.iter().any(|demo| demo == value) {
                    return Err(CredentialError::DemoValue { setting, remedy });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IgnoredAny;

    use super::*;

    const TOKEN: Credential = Credential {
        setting: "some.token",
        remedy: "make one",
    };

    #[test]
    fn the_demo_file_turns_on_demo_mode_and_its_values_are_known() {
        let demo = Settings::<IgnoredAny>::demo().unwrap();
        assert!(demo.demo);
        assert!(DEMO_VALUES.contains(&"demo-admin-token".to_owned()));
        let value = SecretString::from("demo-admin-token");
        assert_eq!(demo.require(&[TOKEN.set_to(&value)]), Ok(()));
    }

    #[test]
    fn a_demo_value_is_refused_under_any_setting_outside_demo_mode() {
        let mut settings = Settings::<IgnoredAny>::demo().unwrap();
        settings.demo = false;
        let value = SecretString::from("demo-intake-token");
        assert_eq!(
            settings.require(&[TOKEN.set_to(&value)]),
            Err(CredentialError::DemoValue {
                setting: "some.token".into(),
                remedy: "make one",
            })
        );
    }

    #[test]
    fn an_empty_family_names_its_setting() {
        let settings = Settings::<IgnoredAny>::demo().unwrap();
        let none = CredentialValues {
            credential: TOKEN,
            values: Vec::new(),
        };
        assert_eq!(
            settings.require(&[none]),
            Err(CredentialError::Missing {
                setting: "some.token".into(),
                remedy: "make one",
            })
        );
    }
}
