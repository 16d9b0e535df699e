//! Signing in: the password checked against the stored hash, with failures limited per
//! account and per client address. An unknown address is answered and limited exactly like a
//! wrong password, so the form does not tell which addresses have accounts.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;

use super::{
    Email, accounts,
    sessions::{self, SessionToken},
};

/// This many failures within [`FAILURE_WINDOW`], for one account or from one address, and
/// sign-in waits until the oldest of them is that old.
pub(crate) const MAX_FAILURES: i64 = 5;
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are of no use to the limit and are swept.
const KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_EMAIL_KEY_CHARS: usize = 254;

pub(crate) enum SignIn {
    Started(SessionToken),
    /// The same answer for an unknown address and a wrong password.
    Refused,
    LockedOut {
        until: DateTime<Utc>,
    },
}

pub(crate) async fn sign_in(
    pool: &PgPool,
    typed_email: &str,
    password: &SecretString,
    client: IpAddr,
) -> Result<SignIn, sqlx::Error> {
    // What was typed is the key, valid address or not: every guess counts.
    let key: String = typed_email
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_EMAIL_KEY_CHARS)
        .collect();
    if let Some(until) = locked_until(pool, &key, client).await? {
        return Ok(SignIn::LockedOut { until });
    }
    let user = match typed_email.parse::<Email>() {
        Ok(email) => accounts::find(pool, &email).await?,
        Err(_) => None,
    };
    // Checked even without a user, so both answers take as long.
    let matches = accounts::password_matches(user.as_ref(), password);
    match user.filter(|_| matches) {
        Some(user) => {
            sqlx::query("DELETE FROM staff_sign_in_failures WHERE email = $1")
                .bind(&key)
                .execute(pool)
                .await?;
            Ok(SignIn::Started(sessions::start(pool, user.user_id).await?))
        }
        None => {
            record_failure(pool, &key, client).await?;
            Ok(SignIn::Refused)
        }
    }
}

/// When sign-in opens again for the account or the address, if either has had
/// [`MAX_FAILURES`] within the window: once the latest such failure is that old.
async fn locked_until(
    pool: &PgPool,
    key: &str,
    client: IpAddr,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(opens_at) FROM (
             (SELECT at + make_interval(secs => $3) AS opens_at FROM staff_sign_in_failures
              WHERE email = $1 AND at > now() - make_interval(secs => $3)
              ORDER BY at DESC OFFSET $4 - 1 LIMIT 1)
             UNION ALL
             (SELECT at + make_interval(secs => $3) FROM staff_sign_in_failures
              WHERE client_addr = $2::inet AND at > now() - make_interval(secs => $3)
              ORDER BY at DESC OFFSET $4 - 1 LIMIT 1)
         ) AS limits",
    )
    .bind(key)
    .bind(client.to_string())
    .bind(FAILURE_WINDOW.as_secs_f64())
    .bind(MAX_FAILURES)
    .fetch_one(pool)
    .await
}

async fn record_failure(pool: &PgPool, key: &str, client: IpAddr) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH swept AS (DELETE FROM staff_sign_in_failures
                        WHERE at < now() - make_interval(secs => $3))
         INSERT INTO staff_sign_in_failures (email, client_addr) VALUES ($1, $2::inet)",
    )
    .bind(key)
    .bind(client.to_string())
    .bind(KEPT_FOR.as_secs_f64())
    .execute(pool)
    .await?;
    tracing::info!(%client, "staff sign-in refused");
    Ok(())
}
