//! Authorization codes, access tokens and rotating refresh tokens. A code, and every token
//! issued for it or refreshed from those, acts on the account picked when the code was issued.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::Serialize;
use uuid::Uuid;

/// Documented lifetime of an authorization code.
const CODE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A freshly minted access + refresh token pair (what a completed OAuth flow yields).
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub created_at: i64,
}

/// Body of a successful `POST /oauth/token`.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// Absent for the client-credentials grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub created_at: i64,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Missing,
    Unknown,
    Expired,
    Revoked,
}

impl TokenRejection {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "The access token is missing",
            Self::Unknown => "The access token is invalid",
            Self::Expired => "The access token expired",
            Self::Revoked => "The access token was revoked",
        }
    }
}

/// A grant that cannot be redeemed; the text becomes `error_description`.
#[derive(Debug)]
pub struct InvalidGrant(pub &'static str);

struct AuthorizationCode {
    redirect_uri: String,
    account_id: Uuid,
    expires_at: DateTime<Utc>,
}

/// One issued access token and (optionally) its refresh token; revoking either kills both,
/// as Doorkeeper does.
struct Grant {
    access_token: String,
    refresh_token: Option<String>,
    account_id: Uuid,
    expires_at: DateTime<Utc>,
    revoked: bool,
}

#[derive(Default)]
struct Store {
    codes: HashMap<String, AuthorizationCode>,
    grants: Vec<Grant>,
}

pub struct Tokens {
    ttl: Duration,
    store: Mutex<Store>,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            store: Mutex::default(),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("token store poisoned")
    }

    /// A code whose tokens act on `account_id`.
    pub fn issue_code(&self, redirect_uri: &str, account_id: Uuid) -> String {
        let code = random_token();
        self.store().codes.insert(
            code.clone(),
            AuthorizationCode {
                redirect_uri: redirect_uri.to_owned(),
                account_id,
                expires_at: Utc::now() + CODE_TTL,
            },
        );
        code
    }

    /// Codes are single use (consumed by any attempt), expire, and are bound to the redirect URI.
    pub fn redeem_code(&self, code: &str, redirect_uri: &str) -> Result<IssuedToken, InvalidGrant> {
        let mut store = self.store();
        let Some(issued) = store.codes.remove(code) else {
            return Err(InvalidGrant(
                "The authorization code is invalid or was already used",
            ));
        };
        if issued.expires_at <= Utc::now() {
            return Err(InvalidGrant("The authorization code expired"));
        }
        if issued.redirect_uri != redirect_uri {
            return Err(InvalidGrant(
                "The redirect_uri does not match the one used to authorize",
            ));
        }
        Ok(self.mint(&mut store, true, issued.account_id))
    }

    pub fn issue(&self, with_refresh_token: bool, account_id: Uuid) -> IssuedToken {
        self.mint(&mut self.store(), with_refresh_token, account_id)
    }

    pub fn issue_pair(&self, account_id: Uuid) -> TokenPair {
        let issued = self.issue(true, account_id);
        TokenPair {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token.expect("requested a refresh token"),
            expires_in: issued.expires_in,
            created_at: issued.created_at,
        }
    }

    /// Rotation: the used refresh token and the access token issued with it die immediately
    /// (Doorkeeper's default; the docs only say the refresh token becomes invalid).
    pub fn refresh(&self, refresh_token: &str) -> Result<IssuedToken, InvalidGrant> {
        let mut store = self.store();
        let grant = store
            .grants
            .iter_mut()
            .find(|g| g.refresh_token.as_deref() == Some(refresh_token))
            .filter(|g| !g.revoked)
            .ok_or(InvalidGrant(
                "The refresh token is invalid, revoked or was already used",
            ))?;
        grant.revoked = true;
        let account_id = grant.account_id;
        Ok(self.mint(&mut store, true, account_id))
    }

    /// Revokes the grant holding `token` (access or refresh); unknown tokens are ignored
    /// (RFC 7009).
    pub fn revoke(&self, token: &str) {
        let mut store = self.store();
        if let Some(grant) = store
            .grants
            .iter_mut()
            .find(|g| g.access_token == token || g.refresh_token.as_deref() == Some(token))
        {
            grant.revoked = true;
        }
    }

    pub fn expire_access_tokens(&self) {
        let now = Utc::now();
        for grant in &mut self.store().grants {
            grant.expires_at = grant.expires_at.min(now);
        }
    }

    /// The account a usable `access_token` acts on.
    pub fn check(&self, access_token: &str) -> Result<Uuid, TokenRejection> {
        let store = self.store();
        let grant = store
            .grants
            .iter()
            .find(|g| g.access_token == access_token)
            .ok_or(TokenRejection::Unknown)?;
        if grant.revoked {
            Err(TokenRejection::Revoked)
        } else if grant.expires_at <= Utc::now() {
            Err(TokenRejection::Expired)
        } else {
            Ok(grant.account_id)
        }
    }

    fn mint(&self, store: &mut Store, with_refresh_token: bool, account_id: Uuid) -> IssuedToken {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let grant = Grant {
            access_token: random_token(),
            refresh_token: with_refresh_token.then(random_token),
            account_id,
            expires_at: now
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            revoked: false,
        };
        let issued = IssuedToken {
            access_token: grant.access_token.clone(),
            token_type: "Bearer",
            expires_in: self.ttl.as_secs(),
            refresh_token: grant.refresh_token.clone(),
            created_at: now.timestamp(),
        };
        store.grants.push(grant);
        issued
    }
}

fn random_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: Uuid = Uuid::from_u128(1);

    #[test]
    fn refresh_rotates_and_kills_the_old_pair() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let first = tokens.issue_pair(ACCOUNT);
        let second = tokens.refresh(&first.refresh_token).unwrap();
        assert!(tokens.refresh(&first.refresh_token).is_err());
        assert_eq!(
            tokens.check(&first.access_token),
            Err(TokenRejection::Revoked)
        );
        assert_eq!(tokens.check(&second.access_token), Ok(ACCOUNT));
        assert_ne!(
            second.refresh_token.as_deref(),
            Some(first.refresh_token.as_str())
        );
    }

    #[test]
    fn codes_are_single_use_and_bound_to_the_redirect() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let code = tokens.issue_code("http://app/callback", ACCOUNT);
        assert!(tokens.redeem_code(&code, "http://evil/callback").is_err());
        let code = tokens.issue_code("http://app/callback", ACCOUNT);
        assert!(tokens.redeem_code(&code, "http://app/callback").is_ok());
        assert!(tokens.redeem_code(&code, "http://app/callback").is_err());
    }

    #[test]
    fn expiry_and_revocation() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let pair = tokens.issue_pair(ACCOUNT);
        tokens.expire_access_tokens();
        assert_eq!(
            tokens.check(&pair.access_token),
            Err(TokenRejection::Expired)
        );
        // An expired access token can still be refreshed.
        let renewed = tokens.refresh(&pair.refresh_token).unwrap();
        tokens.revoke(&renewed.access_token);
        assert_eq!(
            tokens.check(&renewed.access_token),
            Err(TokenRejection::Revoked)
        );
        assert!(
            tokens
                .refresh(renewed.refresh_token.as_deref().unwrap())
                .is_err()
        );
        assert_eq!(tokens.check("nope"), Err(TokenRejection::Unknown));
    }

    #[test]
    fn tokens_keep_the_account_of_their_code_through_refreshes() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let other = Uuid::from_u128(2);
        let code = tokens.issue_code("http://app/callback", other);
        let issued = tokens.redeem_code(&code, "http://app/callback").unwrap();
        assert_eq!(tokens.check(&issued.access_token), Ok(other));
        let refreshed = tokens
            .refresh(issued.refresh_token.as_deref().unwrap())
            .unwrap();
        assert_eq!(tokens.check(&refreshed.access_token), Ok(other));
    }
}
