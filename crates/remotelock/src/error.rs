//! What can go wrong talking to RemoteLock, classified for the callers' durable retries:
//! transient failures are retried later, everything else is permanent (design §4).

use std::{fmt, time::Duration};

use reqwest::StatusCode;
use serde::Deserialize;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RemoteLockError {
    #[error("RemoteLock is unavailable for now")]
    Transient {
        #[source]
        cause: TransientCause,
        /// When RemoteLock said it will take requests again (rate limit).
        retry_after: Option<Duration>,
    },
    #[error("lockbridge is not authorized with RemoteLock")]
    NotAuthorized(#[source] NotAuthorized),
    #[error("RemoteLock refused the request as invalid ({status}): {}", FieldErrors(.errors))]
    Validation {
        status: StatusCode,
        errors: Vec<FieldError>,
    },
    #[error("RemoteLock has no such resource: {message}")]
    NotFound { message: String },
    #[error("RemoteLock refused a duplicate: {message}")]
    Conflict { message: String },
    #[error("RemoteLock refused the request ({status}): {message}")]
    Rejected { status: StatusCode, message: String },
    #[error("RemoteLock's token endpoint refused the request: {message}")]
    TokenRefused { message: String },
    #[error("RemoteLock's answer cannot be read")]
    Decode(#[source] serde_json::Error),
    #[error("the stored RemoteLock authorization cannot be read or written")]
    Storage(#[source] sqlx::Error),
    #[error("the RemoteLock client is misconfigured: {problem}")]
    Configuration {
        problem: &'static str,
        #[source]
        source: BoxError,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TransientCause {
    #[error("no answer (timeout or connection failure)")]
    Transport(#[source] reqwest::Error),
    #[error("RemoteLock answered {status}: {message}")]
    Server { status: StatusCode, message: String },
    #[error("the account's rate limit is spent")]
    RateLimited,
    /// Nothing was sent: the share of the window this work may use is spent (budget.rs).
    #[error("the account's RemoteLock budget for this work is spent until the window resets")]
    BudgetSpent,
}

/// Why the authorization is unusable. Each case lasts until an admin authorizes again.
#[derive(Debug, thiserror::Error)]
pub enum NotAuthorized {
    #[error("no authorization is stored: an admin must authorize lockbridge")]
    Missing,
    #[error("the stored authorization has no refresh token: an admin must authorize lockbridge")]
    NoRefreshToken,
    #[error(
        "RemoteLock refused the refresh token ({detail}): the authorization was revoked, \
         an admin must authorize lockbridge again"
    )]
    Revoked { detail: String },
}

/// One entry of a resource-error body (remotelock-api.md §2.5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// `None` when the error concerns the record as a whole.
    pub attribute: Option<String>,
    pub messages: Vec<String>,
}

impl RemoteLockError {
    pub(crate) fn transient(cause: TransientCause) -> Self {
        Self::Transient {
            cause,
            retry_after: None,
        }
    }

    pub(crate) fn configuration(problem: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Configuration {
            problem,
            source: source.into(),
        }
    }

    /// Worth retrying later: RemoteLock or the database may answer then.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Storage(_))
    }

    /// The rate limit, not RemoteLock, stopped the call (a 429, or the budget held it back):
    /// it goes through after the wait without having failed.
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            Self::Transient {
                cause: TransientCause::RateLimited | TransientCause::BudgetSpent,
                ..
            }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// RemoteLock refused the PIN because another person holds it (in the account or on the
    /// device: the scope is not documented): pick another and retry. The wording is not
    /// documented either; seen are `pin: has already been taken` on a create and, on a grant,
    /// a message about the record as a whole such as "PIN is already used on this device".
    pub fn is_pin_taken(&self) -> bool {
        let Self::Validation { errors, .. } = self else {
            return false;
        };
        let says_taken = |message: &str| {
            ["taken", "already", "duplicate", "in use", "conflict"]
                .iter()
                .any(|hint| message.contains(hint))
        };
        errors.iter().any(|error| {
            error.messages.iter().any(|message| {
                let message = message.to_ascii_lowercase();
                match error.attribute.as_deref() {
                    Some("pin") => says_taken(&message),
                    None => message.contains("pin") && says_taken(&message),
                    Some(_) => false,
                }
            })
        })
    }
}

/// `pin: has already been taken; name: is empty`
struct FieldErrors<'a>(&'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if let Some(attribute) = &error.attribute {
                write!(f, "{attribute}: ")?;
            }
            f.write_str(&error.messages.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validation(attribute: Option<&str>, message: &str) -> RemoteLockError {
        RemoteLockError::Validation {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors: vec![FieldError {
                attribute: attribute.map(str::to_owned),
                messages: vec![message.to_owned()],
            }],
        }
    }

    #[test]
    fn pin_taken_is_recognised_only_on_the_pin() {
        assert!(validation(Some("pin"), "has already been taken").is_pin_taken());
        assert!(validation(Some("pin"), "Duplicate PIN").is_pin_taken());
        assert!(!validation(Some("pin"), "must contain only digits").is_pin_taken());
        assert!(!validation(Some("name"), "has already been taken").is_pin_taken());
        assert!(!validation(None, "has already been taken").is_pin_taken());
        assert!(validation(None, "PIN is already used on this device").is_pin_taken());
        assert!(!validation(None, "Name is already used").is_pin_taken());
    }

    #[test]
    fn validation_message_lists_every_field() {
        let error = RemoteLockError::Validation {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors: vec![
                FieldError {
                    attribute: Some("pin".into()),
                    messages: vec!["is too short".into(), "is taken".into()],
                },
                FieldError {
                    attribute: None,
                    messages: vec!["is invalid".into()],
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "RemoteLock refused the request as invalid (422 Unprocessable Entity): \
             pin: is too short, is taken; is invalid"
        );
    }

    #[test]
    fn classification() {
        let limited = RemoteLockError::Transient {
            cause: TransientCause::RateLimited,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(limited.is_transient() && limited.is_rate_limited());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        let unavailable = RemoteLockError::transient(TransientCause::Server {
            status: StatusCode::BAD_GATEWAY,
            message: "down".into(),
        });
        assert!(!unavailable.is_rate_limited());
        let revoked = RemoteLockError::NotAuthorized(NotAuthorized::Missing);
        assert!(!revoked.is_transient());
        assert_eq!(revoked.retry_after(), None);
        assert!(!validation(Some("pin"), "is taken").is_transient());
    }
}
