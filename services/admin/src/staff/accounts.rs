//! Staff users: an email (unique whatever its case), an argon2 password hash and a role.

use std::{fmt, str::FromStr};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgExecutor;

/// Shorter passwords are refused; longer ones than the maximum are a mistake (or an attack
/// on the hashing time).
pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 256;
const MAX_EMAIL_CHARS: usize = 254;

/// `admin` does everything: the authorization, links, settings and users, and what `staff`
/// do (bookings, PINs, reissues, locks, failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, clap::ValueEnum)]
#[sqlx(type_name = "staff_role", rename_all = "lowercase")]
pub enum Role {
    Admin,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Staff => "staff",
        }
    }
}

/// An address as a person types it, trimmed: something@domain.tld, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("“{0}” is not an email address (such as name@library.org)")]
pub struct EmailError(String);

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim();
        let well_formed = email.len() <= MAX_EMAIL_CHARS
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.split('.').count() >= 2
                    && domain.split('.').all(|label| !label.is_empty())
            });
        if well_formed {
            Ok(Self(email.to_owned()))
        } else {
            Err(EmailError(email.chars().take(MAX_EMAIL_CHARS).collect()))
        }
    }
}

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of rate limits and lookups: addresses differ only in case.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password, long enough; never printed.
pub struct Password(SecretString);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
}

impl Password {
    pub fn new(password: SecretString) -> Result<Self, PasswordError> {
        match password.expose_secret().chars().count() {
            n if n < MIN_PASSWORD_CHARS => Err(PasswordError::TooShort),
            n if n > MAX_PASSWORD_CHARS => Err(PasswordError::TooLong),
            _ => Ok(Self(password)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user with the email {0} exists already")]
    Exists(Email),
    #[error("the password cannot be hashed")]
    Hash(argon2::password_hash::Error),
    #[error("the database is unavailable")]
    Database(#[from] sqlx::Error),
}

/// Stores a new user with the password's argon2id hash (a fresh salt, the crate's defaults).
pub async fn create_user(
    db: impl PgExecutor<'_>,
    email: &Email,
    password: &Password,
    role: Role,
) -> Result<(), CreateUserError> {
    let hash = hash(&password.0).map_err(CreateUserError::Hash)?;
    sqlx::query("INSERT INTO staff_users (email, password_hash, role) VALUES ($1, $2, $3)")
        .bind(email)
        .bind(hash)
        .bind(role)
        .execute(db)
        .await
        .map_err(|error| match crate::authorization::constraint(&error) {
            Some("staff_users_email_key") => CreateUserError::Exists(email.clone()),
            _ => error.into(),
        })?;
    Ok(())
}

fn hash(password: &SecretString) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)?
        .to_string())
}

/// A user as the sign-in finds them.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredUser {
    pub user_id: i64,
    password_hash: String,
}

pub(crate) async fn find(
    db: impl PgExecutor<'_>,
    email: &Email,
) -> Result<Option<StoredUser>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, password_hash FROM staff_users WHERE lower(email) = $1")
        .bind(email.folded())
        .fetch_optional(db)
        .await
}

/// Verifies `presented` against the user's hash, or, for an unknown address, against a hash
/// of nothing: both take the same time, so timing does not tell which addresses have accounts.
pub(crate) fn password_matches(user: Option<&StoredUser>, presented: &SecretString) -> bool {
    static UNKNOWN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        hash(&SecretString::from("no account has this password")).expect("hashing works")
    });
    let stored = user.map_or(UNKNOWN.as_str(), |u| u.password_hash.as_str());
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is unreadable");
        return false;
    };
    let verified = Argon2::default()
        .verify_password(presented.expose_secret().as_bytes(), &parsed)
        .is_ok();
    verified && user.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_trimmed() {
        let email: Email = "  Ada@Example.EDU ".parse().unwrap();
        assert_eq!(email.as_str(), "Ada@Example.EDU");
        assert_eq!(email.folded(), "ada@example.edu");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.edu",
            "ada@example",
            "a b@x.org",
            "a@b@c.org",
            "ada@x..org",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_a_minimum_length() {
        assert_eq!(
            Password::new(SecretString::from("short")).err(),
            Some(PasswordError::TooShort)
        );
        assert!(Password::new(SecretString::from("correct horse battery")).is_ok());
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            Password::new(SecretString::from(long)).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let hashed = hash(&SecretString::from("correct horse battery")).unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        let user = StoredUser {
            user_id: 1,
            password_hash: hashed,
        };
        assert!(password_matches(
            Some(&user),
            &SecretString::from("correct horse battery")
        ));
        assert!(!password_matches(
            Some(&user),
            &SecretString::from("wrong horse battery")
        ));
        assert!(!password_matches(
            None,
            &SecretString::from("no account has this password")
        ));
    }
}
