//! The `remotelock` section, read by every service that calls RemoteLock.

use std::time::Duration;

use lockbridge_runtime::configuration::{Credential, CredentialValues, RANDOM_SECRET};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

const CLIENT_SECRET: Credential = Credential {
    setting: "remotelock.client_secret",
    remedy: "copy it from your RemoteLock OAuth application",
};

const TOKEN_ENCRYPTION_KEY: Credential = Credential {
    setting: "remotelock.token_encryption_key",
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
    pub dashboard_url: Url,
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
}
