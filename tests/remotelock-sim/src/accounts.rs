//! The accounts of the simulated user (remotelock-api.md §1.2: the authorize page lists the
//! user's accounts and the user picks one; the token then acts on that account). The seeded
//! account holds every location, lock and person; accounts a test adds are empty, and the
//! API shows them so: their collections are empty and every record is unknown (404).

use std::sync::{Mutex, MutexGuard};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::errors::ApiError;
use crate::listing::ListQuery;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub owner_role_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// A fresh account with no locations, locks or persons, created now.
    fn empty(name: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            owner_role_id: Uuid::new_v4(),
            created_at: Utc::now(),
        }
    }
}

/// The account a request's token acts on: put in the request's extensions by
/// [`crate::auth::require_bearer`].
#[derive(Debug, Clone, Copy)]
pub struct ActingAccount(pub Uuid);

/// An account id the simulator does not know.
#[derive(Debug, thiserror::Error)]
#[error("no account has the id {0}")]
pub struct UnknownAccount(pub Uuid);

pub struct Accounts {
    seeded: Account,
    inner: Mutex<Registry>,
}

struct Registry {
    added: Vec<Account>,
    /// The account the authorize page picks for the codes it issues.
    approving: Uuid,
}

impl Accounts {
    /// The seeded account alone, picked on the authorize page.
    pub fn new(seeded: Account) -> Self {
        Self {
            inner: Mutex::new(Registry {
                added: Vec::new(),
                approving: seeded.id,
            }),
            seeded,
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().expect("account registry poisoned")
    }

    pub fn seeded(&self) -> &Account {
        &self.seeded
    }

    /// Adds an empty account of the same user; the authorize page keeps picking the account it
    /// picked before.
    pub fn add(&self, name: &str) -> Uuid {
        let account = Account::empty(name);
        let id = account.id;
        self.registry().added.push(account);
        id
    }

    /// From now on the authorize page picks `id` (the seeded account or an added one).
    pub fn approve_as(&self, id: Uuid) -> Result<(), UnknownAccount> {
        if self.get(id).is_none() {
            return Err(UnknownAccount(id));
        }
        self.registry().approving = id;
        Ok(())
    }

    pub fn approving(&self) -> Uuid {
        self.registry().approving
    }

    pub fn get(&self, id: Uuid) -> Option<Account> {
        if id == self.seeded.id {
            return Some(self.seeded.clone());
        }
        self.registry().added.iter().find(|a| a.id == id).cloned()
    }
}

/// Top-level collections: empty in an added account. Everything below them names a record,
/// which an added account does not have.
const COLLECTIONS: &[&str] = &[
    "/locations",
    "/devices",
    "/access_persons",
    "/events",
    "/notification_subscribers",
    "/notification_subscriptions",
    "/notifications",
];
/// About the token's user and account: answered for any account.
const ANY_ACCOUNT: &[&str] = &["/user", "/account"];

/// Middleware, after the bearer check: the seeded account's data is served only to tokens
/// acting on the seeded account, so a token for another account sees none of its locks,
/// locations or persons. Writes in another account are refused as unknown (404) too: the
/// simulator keeps no data of its own for added accounts.
pub async fn confine(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Set by the bearer check, which every request reaching this layer has passed.
    let acting = request.extensions().get::<ActingAccount>().copied();
    if acting.is_none_or(|ActingAccount(id)| id == state.accounts.seeded().id) {
        return next.run(request).await;
    }
    let path = request.uri().path().trim_end_matches('/');
    if ANY_ACCOUNT.contains(&path) {
        return next.run(request).await;
    }
    if request.method() != Method::GET || !COLLECTIONS.contains(&path) {
        return ApiError::not_found().into_response();
    }
    match ListQuery::parse(request.uri().query().unwrap_or_default()) {
        Ok(query) => Json(query.nothing()).into_response(),
        Err(error) => error.into_response(),
    }
}
