//! The stored RemoteLock authorization: one row, tokens encrypted at rest (design §6).
//!
//! Refresh tokens rotate, so two refreshes with the same token would leave one party holding
//! a dead token and the other — maybe — nothing. A refresh is therefore single-flight: a mutex
//! inside the process and a row lock (`SELECT … FOR UPDATE`) across processes, a re-read
//! under that lock to skip a refresh someone else just did, and the new pair persisted in the
//! same transaction.

use std::sync::Arc;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use lockbridge_sealing::Sealer;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    PgConnection, PgPool, Postgres, pool::PoolConnection, postgres::PgArguments, query::Query,
};
use tokio::sync::Mutex;

use crate::{
    error::{NotAuthorized, RemoteLockError},
    oauth::{OAuthClient, TokenSet},
    resources::Account,
};

/// Refresh this long before the access token expires, so no request carries a token that
/// dies on the way.
const REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(5);
/// A token read from the database is used again for this long without reading it anew: under
/// load every RemoteLock request read the row, two statements per PIN. A token another process
/// replaced meanwhile costs at most one 401, answered by [`TokenManager::refresh_after_rejection`];
/// an authorization removed in the admin stops this process's requests this much later, while
/// no space is linked any more (removal waits for the last link to go).
const REUSE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    cipher: Sealer,
    oauth: OAuthClient,
    /// Held for a whole refresh, so this process asks the database for the row lock once.
    refreshing: Mutex<()>,
    /// The token last read or refreshed here, with when it was read and when it expires.
    recent: std::sync::Mutex<Option<Recent>>,
}

struct Recent {
    token: SecretString,
    read_at: std::time::Instant,
    expires_at: DateTime<Utc>,
}

impl Recent {
    fn usable(&self) -> bool {
        self.read_at.elapsed() < REUSE_FOR && self.expires_at - REFRESH_AHEAD > Utc::now()
    }
}

#[derive(sqlx::FromRow)]
struct StoredTokens {
    access_token_enc: Vec<u8>,
    refresh_token_enc: Option<Vec<u8>>,
    access_expires_at: DateTime<Utc>,
}

impl StoredTokens {
    fn expires_soon(&self) -> bool {
        self.access_expires_at - REFRESH_AHEAD <= Utc::now()
    }
}

/// Why a refresh is wanted; checked again once the row is locked.
enum RefreshReason<'a> {
    ExpiresSoon,
    Rejected(&'a SecretString),
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

const SELECT_TOKENS: &str =
    "SELECT access_token_enc, refresh_token_enc, access_expires_at FROM remotelock_authorization";
const LOCK_TOKENS: &str = "SELECT access_token_enc, refresh_token_enc, access_expires_at \
                           FROM remotelock_authorization FOR UPDATE";

impl TokenManager {
    pub fn new(pool: PgPool, cipher: Sealer, oauth: OAuthClient) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                cipher,
                oauth,
                refreshing: Mutex::new(()),
                recent: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Stores a new authorization (the admin's OAuth callback), replacing any earlier one.
    pub async fn save(
        &self,
        tokens: &TokenSet,
        account_id: Option<&str>,
        account_name: Option<&str>,
    ) -> Result<(), RemoteLockError> {
        let mut db = self.connection().await?;
        self.save_in(&mut db, tokens, account_id, account_name)
            .await
    }

    /// [`Self::save`] on `db`, e.g. inside the caller's transaction that first checked the
    /// stored authorization under its row lock.
    pub async fn save_in(
        &self,
        db: &mut PgConnection,
        tokens: &TokenSet,
        account_id: Option<&str>,
        account_name: Option<&str>,
    ) -> Result<(), RemoteLockError> {
        let query = sqlx::query(
            "INSERT INTO remotelock_authorization
                 (id, account_id, account_name, access_token_enc, refresh_token_enc,
                  access_expires_at, authorized_at, refreshed_at)
             VALUES (TRUE, $1, $2, $3, $4, $5, now(), NULL)
             ON CONFLICT (id) DO UPDATE SET
                 account_id = EXCLUDED.account_id,
                 account_name = EXCLUDED.account_name,
                 access_token_enc = EXCLUDED.access_token_enc,
                 refresh_token_enc = EXCLUDED.refresh_token_enc,
                 access_expires_at = EXCLUDED.access_expires_at,
                 authorized_at = EXCLUDED.authorized_at,
                 refreshed_at = NULL",
        );
        let query = query.bind(account_id).bind(account_name);
        self.bind_tokens(query, tokens)
            .execute(db)
            .await
            .map_err(RemoteLockError::Storage)?;
        self.forget();
        Ok(())
    }

    /// Names the account the stored authorization acts on, once it is known (after `save`,
    /// the admin asks RemoteLock with the new token). Leaves the tokens alone: a refresh may
    /// already have replaced the saved ones.
    pub async fn record_account(&self, account: &Account) -> Result<(), RemoteLockError> {
        sqlx::query("UPDATE remotelock_authorization SET account_id = $1, account_name = $2")
            .bind(&account.id)
            .bind(&account.name)
            .execute(&self.inner.pool)
            .await
            .map_err(RemoteLockError::Storage)?;
        Ok(())
    }

    /// Deletes the stored authorization (the admin's *Remove Authorization*); this process
    /// stops using its token at once, others within [`REUSE_FOR`].
    pub async fn remove(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM remotelock_authorization")
            .execute(&self.inner.pool)
            .await?;
        self.forget();
        Ok(())
    }

    /// The database the authorization (and the account's rate-limit budget) is kept in.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    async fn connection(&self) -> Result<PoolConnection<Postgres>, RemoteLockError> {
        self.inner
            .pool
            .acquire()
            .await
            .map_err(RemoteLockError::Storage)
    }

    /// A usable access token, refreshed first when it is about to expire.
    pub async fn access_token(&self) -> Result<SecretString, RemoteLockError> {
        if let Some(token) = self.reusable() {
            return Ok(token);
        }
        let mut db = self.connection().await?;
        let stored = load(&mut db, SELECT_TOKENS).await?;
        drop(db);
        if !stored.expires_soon() {
            let token = self.decrypt(&stored.access_token_enc)?;
            self.remember(&token, stored.access_expires_at);
            return Ok(token);
        }
        match self.refresh(RefreshReason::ExpiresSoon).await {
            // The token still has a few minutes: better used than a failed call.
            Err(error) if error.is_transient() && stored.access_expires_at > Utc::now() => {
                tracing::warn!(
                    error = %lockbridge_runtime::telemetry::error_chain(&error),
                    "RemoteLock token refresh failed; using the current token until it expires"
                );
                self.decrypt(&stored.access_token_enc)
            }
            result => result,
        }
    }

    /// After RemoteLock refused `rejected`: a fresh token, refreshing unless another task or
    /// process already replaced the rejected one.
    pub async fn refresh_after_rejection(
        &self,
        rejected: &SecretString,
    ) -> Result<SecretString, RemoteLockError> {
        self.forget();
        self.refresh(RefreshReason::Rejected(rejected)).await
    }

    /// The token read or refreshed here a moment ago, if it is still good to use.
    fn reusable(&self) -> Option<SecretString> {
        let recent = self.inner.recent.lock().expect("never poisoned");
        recent
            .as_ref()
            .filter(|recent| recent.usable())
            .map(|recent| recent.token.clone())
    }

    fn remember(&self, token: &SecretString, expires_at: DateTime<Utc>) {
        *self.inner.recent.lock().expect("never poisoned") = Some(Recent {
            token: token.clone(),
            read_at: std::time::Instant::now(),
            expires_at,
        });
    }

    /// The next request reads the stored token again.
    fn forget(&self) {
        *self.inner.recent.lock().expect("never poisoned") = None;
    }

    async fn refresh(&self, reason: RefreshReason<'_>) -> Result<SecretString, RemoteLockError> {
        let _in_process = self.inner.refreshing.lock().await;
        let mut tx = self
            .inner
            .pool
            .begin()
            .await
            .map_err(RemoteLockError::Storage)?;
        let stored = load(&mut tx, LOCK_TOKENS).await?;
        let access_token = self.decrypt(&stored.access_token_enc)?;
        let still_needed = match reason {
            RefreshReason::ExpiresSoon => stored.expires_soon(),
            RefreshReason::Rejected(rejected) => {
                access_token.expose_secret() == rejected.expose_secret()
            }
        };
        if !still_needed {
            // Refreshed by someone else meanwhile; dropping `tx` releases the row.
            self.remember(&access_token, stored.access_expires_at);
            return Ok(access_token);
        }
        let refresh_token = self.decrypt(stored.refresh_token_enc.as_deref().ok_or(
            RemoteLockError::NotAuthorized(NotAuthorized::NoRefreshToken),
        )?)?;
        let tokens = match self.inner.oauth.refresh(&refresh_token).await {
            Ok(tokens) => tokens,
            Err(error) => {
                metrics::counter!("lockbridge_remotelock_token_refreshes_total", "outcome" => "failed").increment(1);
                return Err(error);
            }
        };
        metrics::counter!("lockbridge_remotelock_token_refreshes_total", "outcome" => "refreshed")
            .increment(1);
        let persisted = async {
            self.bind_tokens(sqlx::query(STORE_REFRESHED), &tokens)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        };
        if let Err(error) = persisted.await {
            // The refresh token just used is dead: losing the new pair would lose the whole
            // authorization. Try hard, outside the broken transaction.
            tracing::warn!(%error, "cannot store the refreshed RemoteLock tokens; retrying");
            (|| async {
                self.bind_tokens(sqlx::query(STORE_REFRESHED), &tokens)
                    .execute(&self.inner.pool)
                    .await
            })
            .retry(ExponentialBuilder::default().with_max_times(10))
            .await
            .map_err(RemoteLockError::Storage)?;
        }
        tracing::info!(expires_at = %tokens.expires_at, "RemoteLock access token refreshed");
        self.remember(&tokens.access_token, tokens.expires_at);
        Ok(tokens.access_token)
    }

    /// Binds the statement's next three parameters: the access token and the refresh token
    /// (if any), both encrypted, then the access token's expiry.
    fn bind_tokens<'q>(&self, query: PgQuery<'q>, tokens: &TokenSet) -> PgQuery<'q> {
        let refresh_token = tokens.refresh_token.as_ref();
        query
            .bind(self.inner.cipher.seal_secret(&tokens.access_token))
            .bind(refresh_token.map(|t| self.inner.cipher.seal_secret(t)))
            .bind(tokens.expires_at)
    }

    fn decrypt(&self, stored: &[u8]) -> Result<SecretString, RemoteLockError> {
        self.inner.cipher.open_secret(stored).map_err(|e| {
            RemoteLockError::configuration("the stored RemoteLock tokens cannot be decrypted", e)
        })
    }
}

// A connection rather than any executor: a generic executor makes the callers' futures
// fail to be `Send` for every lifetime, which spawned tasks and axum handlers need.
const STORE_REFRESHED: &str = "UPDATE remotelock_authorization SET
     access_token_enc = $1,
     refresh_token_enc = COALESCE($2, refresh_token_enc),
     access_expires_at = $3,
     refreshed_at = now()";

async fn load(db: &mut PgConnection, query: &str) -> Result<StoredTokens, RemoteLockError> {
    sqlx::query_as::<_, StoredTokens>(query)
        .fetch_optional(db)
        .await
        .map_err(RemoteLockError::Storage)?
        .ok_or(RemoteLockError::NotAuthorized(NotAuthorized::Missing))
}
