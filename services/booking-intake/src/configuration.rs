//! booking-intake's settings: the sections every service reads, `intake` and `pins`. Those of the
//! other services are not parsed here, so a mistake in one of them cannot stop intake.

use std::{collections::BTreeMap, net::SocketAddr};

use lockbridge_runtime::configuration::{self, Credential, CredentialValues};
use lockbridge_sealing::pins::PinKeySettings;
use secrecy::SecretString;
use serde::Deserialize;

pub type Settings = configuration::Settings<Sections>;

/// The sections only booking-intake reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub intake: IntakeSettings,
    pub pins: PinKeySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntakeSettings {
    pub listen: SocketAddr,
    /// One bearer token per upstream source, keyed by the source's name.
    #[serde(default)]
    pub tokens: BTreeMap<String, SecretString>,
    /// The source of each RabbitMQ user that publishes to `lockbridge.intake`, keyed by user
    /// (design §3.5). Sources are those of `tokens`, but need no token of their own.
    #[serde(default)]
    pub amqp_sources: BTreeMap<String, String>,
    pub max_body_bytes: usize,
}

/// Every `intake.tokens.<source>`, of which there must be one at least.
const SOURCE_TOKENS: Credential = Credential {
    setting: "intake.tokens.<source>",
    remedy: "set one per upstream source, generated with `openssl rand -base64 32`",
};

impl IntakeSettings {
    pub fn source_tokens(&self) -> CredentialValues<'_> {
        CredentialValues {
            credential: SOURCE_TOKENS,
            values: self
                .tokens
                .iter()
                .map(|(source, token)| (format!("intake.tokens.{source}"), token))
                .collect(),
        }
    }
}
