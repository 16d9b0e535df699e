//! LibCal's OAuth client credentials (libcal-api.md §1): a token lasts an hour and a new one
//! may be had at any time, so one is kept until shortly before it expires, and dropped at
//! once when LibCal refuses it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::{sync::Mutex, time::Instant};

use super::{LibcalError, error_message};

/// Renewed this long before LibCal would refuse it (clients use 30–60 s [T]).
const RENEW_EARLY: Duration = Duration::from_secs(60);

pub(super) struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    /// Seconds; an hour when absent [T].
    expires_in: Option<u64>,
}

struct Token {
    access: SecretString,
    renew_at: Instant,
}

/// The one token of the process; fetching is single-flight (the lock is held across it).
pub(super) struct TokenCache {
    credentials: Credentials,
    current: Mutex<Option<Token>>,
}

impl TokenCache {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            current: Mutex::new(None),
        }
    }

    /// A live access token, fetched when there is none or it is about to expire.
    pub async fn access(
        &self,
        http: &reqwest::Client,
        token_url: &url::Url,
    ) -> Result<SecretString, LibcalError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.access.clone());
        }
        let token = self.fetch(http, token_url).await?;
        let access = token.access.clone();
        *current = Some(token);
        Ok(access)
    }

    /// Forgets the token LibCal just refused, unless another request already replaced it.
    pub async fn refused(&self, access: &SecretString) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|token| token.access.expose_secret() == access.expose_secret())
        {
            *current = None;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        token_url: &url::Url,
    ) -> Result<Token, LibcalError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.credentials.client_id.as_str()),
            (
                "client_secret",
                self.credentials.client_secret.expose_secret(),
            ),
        ];
        let response = http
            .post(token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|source| LibcalError::Unreachable {
                path: "oauth/token".into(),
                source,
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|source| LibcalError::Unreachable {
                path: "oauth/token".into(),
                source,
            })?;
        if status.is_client_error() {
            // 400 invalid_client [T]: retrying will not help until the settings change.
            return Err(LibcalError::Credentials(error_message(&body)));
        }
        if !status.is_success() {
            return Err(LibcalError::Status {
                path: "oauth/token".into(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|source| LibcalError::Malformed {
                path: "oauth/token".into(),
                source,
            })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        Ok(Token {
            access: answer.access_token,
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_EARLY),
        })
    }
}
