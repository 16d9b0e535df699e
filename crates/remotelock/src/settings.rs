//! The `remotelock` section, read by every service that calls RemoteLock.

use std::time::Duration;

use lockbridge_runtime::configuration::{Credential, CredentialValues, RANDOM_SECRET};
use lockbridge_sealing::{KeySetting, SealError, Sealer};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

const CLIENT_SECRET: Credential = Credential {
    setting: "remotelock.client_secret",
    remedy: "copy it from your RemoteLock OAuth application",
};

/// The key the stored tokens are sealed under, and the one being rotated away from.
pub const TOKEN_KEY: KeySetting = KeySetting {
    current: "remotelock.token_encryption_key",
    previous: "remotelock.previous_token_encryption_key",
};

const TOKEN_ENCRYPTION_KEY: Credential = Credential {
    setting: TOKEN_KEY.current,
    remedy: RANDOM_SECRET,
};

#[derive(Debug, Clone, Deserialize)]
pub struct RemoteLockSettings {
    pub api_url: Url,
    pub oauth_url: Url,
    pub client_id: String,
    /// Empty until set, as every credential: see [`RemoteLockSettings::credentials`].
    #[serde(default)]
    pub client_secret: SecretString,
    pub redirect_url: Url,
    #[serde(default)]
    pub token_encryption_key: SecretString,
    /// Set only while rotating the key: see docs/operations.md.
    #[serde(default)]
    pub previous_token_encryption_key: Option<SecretString>,
    pub dashboard_url: Url,
    /// The secret RemoteLock sends back as `X-Secret` with each webhook (admin only); empty:
    /// webhooks are off and the provisioner's poll alone reads the events.
    #[serde(default)]
    pub webhook_secret: SecretString,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl RemoteLockSettings {
    /// The credentials every caller of RemoteLock needs, to check before connecting.
    pub fn credentials(&self) -> [CredentialValues<'_>; 2] {
        [
            CLIENT_SECRET.set_to(&self.client_secret),
            TOKEN_ENCRYPTION_KEY.set_to(&self.token_encryption_key),
        ]
    }

    /// What seals and opens the stored tokens.
    pub fn token_sealer(&self) -> Result<Sealer, SealError> {
        Sealer::new(
            TOKEN_KEY,
            &self.token_encryption_key,
            self.previous_token_encryption_key.as_ref(),
        )
    }
}
