//! A stand-in for the RemoteLock Connect API: OAuth server and REST API on one HTTP port,
//! following `shared/remotelock-api.md`. Tests start it in-process with [`Simulator::start`];
//! the binary serves it for local runs and compose.

mod access_persons;
mod accesses;
mod account;
mod accounts;
mod auth;
mod catalog;
mod config;
mod control;
mod device_sync;
mod devices;
mod directory;
mod envelope;
mod errors;
mod events;
mod faults;
mod json_writes;
mod listing;
mod oauth;
mod person_input;
mod pin_conflicts;
mod pins;
mod rate_limit;
mod request_log;
mod router;
mod state;
mod tokens;
mod version;
mod wall_clock;

use std::io;
use std::sync::Arc;

use url::Url;

pub use accounts::UnknownAccount;
pub use axum::http::Method;
pub use catalog::{Seed, SeedLocation, SeedLock};
pub use config::{ConfigError, DEFAULT_BIN_LISTEN, SimConfig};
pub use directory::{AccessSnapshot, GuestSnapshot, PersonStatus};
pub use events::{EventKind, EventSnapshot};
pub use faults::{Fault, FaultKind};
pub use pin_conflicts::{PinCheck, PinConflictError, PinUniqueness};
pub use rate_limit::RateLimitWindow;
pub use request_log::RequestRecord;
pub use tokens::TokenPair;

use state::SimState;

pub struct Simulator;

impl Simulator {
    /// Binds `config.listen` and serves until [`SimHandle::shutdown`] or until the last handle
    /// is dropped.
    pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
        let bound = sim_support::bind(config.listen).await?;
        let state = Arc::new(SimState::new(config, bound.base_url.clone()));
        let serving = bound.serve(router::build(state.clone()), state.shutdown.clone());
        Ok(SimHandle { state, serving })
    }
}

#[derive(Clone)]
pub struct SimHandle {
    state: Arc<SimState>,
    /// The server stops when the last clone of the handle goes.
    serving: sim_support::Serving,
}

impl SimHandle {
    /// E.g. `http://127.0.0.1:PORT/`: OAuth under `/oauth/...`, the API at `/...` and `/v1/...`.
    pub fn base_url(&self) -> Url {
        self.serving.base_url.clone()
    }

    pub fn seed(&self) -> Seed {
        self.state.catalog.seed()
    }

    /// Every access guest ever created, including deactivated and deleted ones.
    pub fn guests(&self) -> Vec<GuestSnapshot> {
        self.state.guests()
    }

    pub fn accesses(&self) -> Vec<AccessSnapshot> {
        self.state.accesses()
    }

    /// Door truth: the guests that can open `lock_id` now or later (upcoming or current,
    /// not deleted, holding an access to the lock or to its location), in creation order.
    pub fn live_guests_on_lock(&self, lock_id: &str) -> Vec<GuestSnapshot> {
        self.state.live_guests_on_lock(seeded_lock_id(lock_id))
    }

    /// The next `count` requests at stage `at` that carry a well-formed PIN (create, update)
    /// or grant a person holding one are refused with the PIN-conflict 422, as if someone
    /// else held the PIN. `generate_pin` is never refused: the server picks a free PIN.
    pub fn refuse_next_pins(&self, count: u32, at: PinCheck) {
        self.state.pin_refusals.add(count, at);
    }

    /// Puts an `access_user` that lockbridge does not know about into the account, holding
    /// `pin` (no PIN rule applies) and, with `lock_id`, access to that lock. Returns its id.
    pub fn add_access_user(&self, name: &str, pin: &str, lock_id: Option<&str>) -> String {
        self.state
            .add_access_user(name, pin, lock_id.map(seeded_lock_id))
            .expect("seeded lock id")
            .to_string()
    }

    /// Every event recorded so far (lock sync outcomes), oldest first.
    pub fn events(&self) -> Vec<EventSnapshot> {
        self.state.events()
    }

    /// The lock reports out of the blue that the person's PIN failed to sync (`status_info`,
    /// e.g. `timeout`): an `access_person_sync_failed_event` is recorded and the PIN stops
    /// working there until a PIN change (or a new grant) syncs it again. Returns the event's
    /// id. Panics unless the person exists and reaches the seeded lock.
    pub fn report_sync_failure(&self, person_id: &str, lock_id: &str, status_info: &str) -> String {
        let person = person_id
            .parse()
            .unwrap_or_else(|_| panic!("{person_id:?} is not a person id"));
        self.state
            .report_sync_failure(person, seeded_lock_id(lock_id), status_info)
            .unwrap_or_else(|| panic!("person {person_id} does not reach lock {lock_id}"))
            .to_string()
    }

    pub fn inject(&self, fault: Fault) {
        self.state.faults.push(fault);
    }

    /// Every access token issued so far expires now; refresh tokens stay usable.
    pub fn expire_access_tokens(&self) {
        self.state.tokens.expire_access_tokens();
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests.snapshot()
    }

    /// Every rate-limit window so far, oldest first: what each admitted and refused.
    pub fn rate_limit_windows(&self) -> Vec<RateLimitWindow> {
        self.state.rate_limiter.history()
    }

    /// A token pair for the seeded account, as if the authorization-code flow had completed.
    pub fn issue_tokens(&self) -> TokenPair {
        self.state
            .tokens
            .issue_pair(self.state.accounts.seeded().id)
    }

    /// Adds another account of the user, named `name`, with no locations, locks or persons:
    /// a token acting on it sees empty collections and 404s. Returns its id.
    pub fn add_account(&self, name: &str) -> String {
        self.state.accounts.add(name).to_string()
    }

    /// From now on the authorize page picks `account_id` (the seed's or an added one), so the
    /// tokens of the codes it issues act on that account.
    pub fn approve_as(&self, account_id: &str) {
        let id = account_id
            .parse()
            .unwrap_or_else(|_| panic!("{account_id:?} is not an account id"));
        self.state
            .accounts
            .approve_as(id)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn shutdown(&self) {
        self.state.shutdown.cancel();
    }
}

/// Test-API lock ids are the seed's; anything else is a bug in the test.
fn seeded_lock_id(raw: &str) -> uuid::Uuid {
    raw.parse()
        .unwrap_or_else(|_| panic!("{raw:?} is not a lock id of the seed"))
}
