//! Signed-in browsers: a random token in the cookie, its SHA-256 in the database, a CSRF token
//! per session, and one notice for the next page.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{RngCore, rngs::OsRng};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::{Email, Role};

/// A session ends this long after sign-in, whatever happens meanwhile.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// 256 random bits, URL-safe: session tokens, CSRF tokens and OAuth states.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the browser's cookie holds; the database only its hash.
pub(crate) struct SessionToken(SecretString);

impl SessionToken {
    pub fn presented(value: &str) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn key(&self) -> Vec<u8> {
        Sha256::digest(self.0.expose_secret().as_bytes()).to_vec()
    }
}

/// A sentence for the next page: what a form or the OAuth round trip did.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub text: String,
    pub is_error: bool,
}

impl Notice {
    pub fn done(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: false,
        }
    }

    pub fn failed(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
        }
    }
}

/// A live session and its user (no `Debug`: it holds the CSRF token).
#[derive(Clone)]
pub(crate) struct Session {
    key: Vec<u8>,
    pub user_id: i64,
    pub email: Email,
    pub role: Role,
    pub csrf_token: String,
    pub notice: Option<Notice>,
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: i64,
    email: Email,
    role: Role,
    csrf_token: String,
    notice: Option<String>,
    notice_is_error: bool,
}

/// Starts a session for `user_id`; expired sessions are swept on the way.
pub(crate) async fn start(pool: &PgPool, user_id: i64) -> Result<SessionToken, sqlx::Error> {
    let token = SessionToken(SecretString::from(random_token()));
    sqlx::query(
        "WITH swept AS (DELETE FROM staff_sessions WHERE expires_at <= now())
         INSERT INTO staff_sessions (token_sha256, user_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(token.key())
    .bind(user_id)
    .bind(random_token())
    .bind(SESSION_LIFETIME.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(token)
}

pub(crate) async fn find(
    pool: &PgPool,
    token: &SessionToken,
) -> Result<Option<Session>, sqlx::Error> {
    let key = token.key();
    let row: Option<Row> = sqlx::query_as(
        "SELECT u.user_id, u.email, u.role, s.csrf_token, s.notice, s.notice_is_error
         FROM staff_sessions s JOIN staff_users u USING (user_id)
         WHERE s.token_sha256 = $1 AND s.expires_at > now()",
    )
    .bind(&key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| Session {
        key,
        user_id: row.user_id,
        email: row.email,
        role: row.role,
        csrf_token: row.csrf_token,
        notice: row.notice.map(|text| Notice {
            text,
            is_error: row.notice_is_error,
        }),
    }))
}

impl Session {
    pub async fn end(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_sha256 = $1")
            .bind(&self.key)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Keeps `notice` for the next page (replacing one not shown yet).
    pub async fn leave_notice(&self, pool: &PgPool, notice: &Notice) -> Result<(), sqlx::Error> {
        self.set_notice(pool, Some(notice)).await
    }

    /// The page showing the notice has it: it is not shown again.
    pub async fn notice_shown(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        self.set_notice(pool, None).await
    }

    async fn set_notice(&self, pool: &PgPool, notice: Option<&Notice>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE staff_sessions SET notice = $2, notice_is_error = $3 WHERE token_sha256 = $1",
        )
        .bind(&self.key)
        .bind(notice.map(|n| n.text.as_str()))
        .bind(notice.is_some_and(|n| n.is_error))
        .execute(pool)
        .await?;
        Ok(())
    }
}
