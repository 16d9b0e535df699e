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
mod keypad;
mod listing;
mod lock_state;
mod notification_records;
mod notification_subscribers;
mod notification_subscriptions;
mod notifications;
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
mod webhooks;

use std::io;
use std::sync::Arc;

use url::Url;
use uuid::Uuid;

pub use accounts::UnknownAccount;
pub use axum::http::Method;
pub use catalog::{Seed, SeedLocation, SeedLock};
pub use config::{ConfigError, DEFAULT_BIN_LISTEN, SimConfig};
pub use directory::{AccessSnapshot, GuestSnapshot, PersonStatus};
pub use events::{EventKind, EventPerson, EventSnapshot, EventSource, EventStatus};
pub use faults::{Fault, FaultKind};
pub use keypad::{DeniedPinEvents, KeypadAnswer};
pub use lock_state::{Bolt, LockSnapshot};
pub use pin_conflicts::{PinCheck, PinConflictError, PinUniqueness};
pub use rate_limit::RateLimitWindow;
pub use request_log::RequestRecord;
pub use tokens::TokenPair;
pub use webhooks::{AttemptOutcome, TlsRoute, WebhookAttempt};

use state::SimState;

pub struct Simulator;

impl Simulator {
    /// Binds `config.listen` and serves until [`SimHandle::shutdown`] or until the last handle
    /// is dropped.
    pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
        let bound = sim_support::bind(config.listen).await?;
        let state = Arc::new(SimState::new(config, bound.base_url.clone()));
        let serving = bound.serve(router::build(state.clone()), state.shutdown.clone());
        webhooks::start(&state);
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

    /// Someone in RemoteLock's dashboard makes a deactivated guest active again. Panics for an
    /// unknown person.
    pub fn reactivate_guest(&self, person_id: &str) {
        assert!(
            access_persons::reactivate(&self.state, person_id_of(person_id)),
            "no person {person_id}"
        );
    }

    /// The lock leaves the account, as `DELETE /devices/:id` does. Panics unless it was there.
    pub fn deregister_lock(&self, lock_id: &str) {
        assert!(
            devices::deregister(&self.state, seeded_lock_id(lock_id)),
            "no lock {lock_id} in the account"
        );
    }

    /// Every event recorded so far (syncs, keypad, health), in the order the service
    /// recorded them.
    pub fn events(&self) -> Vec<EventSnapshot> {
        self.state.events()
    }

    /// The lock reports out of the blue that the person's PIN failed to sync (`status_info`,
    /// e.g. `timeout`): an `access_person_sync_failed_event` is recorded and the PIN stops
    /// working there until a PIN change (or a new grant) syncs it again. Returns the event's
    /// id. Panics unless the person exists and reaches the seeded lock.
    pub fn report_sync_failure(&self, person_id: &str, lock_id: &str, status_info: &str) -> String {
        device_sync::report_sync_failure(
            &self.state,
            person_id_of(person_id),
            seeded_lock_id(lock_id),
            status_info,
        )
        .unwrap_or_else(|| panic!("person {person_id} does not reach lock {lock_id}"))
        .to_string()
    }

    /// The next time `lock_id` syncs a person (`person_id`, or anyone), it fails with
    /// `status_info` (e.g. `pin_conflict`, `timeout`). Panics for an unknown person.
    pub fn fail_next_sync(&self, lock_id: &str, person_id: Option<&str>, status_info: &str) {
        let person = person_id.map(person_id_of);
        assert!(
            device_sync::fail_next_sync(&self.state, seeded_lock_id(lock_id), person, status_info),
            "no person {person_id:?} or lock {lock_id}"
        );
    }

    /// Someone types `pin` (digits) at the lock's keypad.
    pub fn enter_pin(&self, lock_id: &str, pin: &str) -> KeypadAnswer {
        keypad::enter_pin(&self.state, seeded_lock_id(lock_id), pin)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("seeded lock")
    }

    /// The lock goes offline (`false`) or comes back (`true`, uploading what it held and
    /// syncing what waited). Returns the `connectivity` event's id, `None` if nothing changed.
    pub fn set_connected(&self, lock_id: &str, connected: bool) -> Option<String> {
        lock_state::set_connected(&self.state, seeded_lock_id(lock_id), connected)
            .expect("seeded lock")
            .map(|id| id.to_string())
    }

    /// The lock reports its battery at `level` percent (0–100). Returns the events published.
    pub fn set_power_level(&self, lock_id: &str, level: u8) -> Vec<String> {
        lock_state::set_power_level(&self.state, seeded_lock_id(lock_id), level.into())
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("seeded lock")
            .iter()
            .map(Uuid::to_string)
            .collect()
    }

    /// What `GET /devices` shows of the lock's connection, battery and bolt now.
    pub fn lock_state(&self, lock_id: &str) -> LockSnapshot {
        self.state
            .directory()
            .locks
            .snapshot(seeded_lock_id(lock_id))
            .expect("seeded lock")
    }

    /// An outage of webhook delivery: nothing is sent (not even retries) until
    /// [`resume_webhooks`](Self::resume_webhooks).
    pub fn pause_webhooks(&self) {
        self.state.webhooks.pause();
    }

    pub fn resume_webhooks(&self) {
        self.state.webhooks.resume();
    }

    /// From now on `https://host[:port]` webhooks go over plain HTTP to `route.to`.
    pub fn add_webhook_route(&self, route: TlsRoute) {
        self.state.webhooks.add_route(route);
    }

    /// Every webhook `POST` so far, in the order they ended.
    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.state.webhooks.attempts()
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

fn person_id_of(raw: &str) -> Uuid {
    raw.parse()
        .unwrap_or_else(|_| panic!("{raw:?} is not a person id"))
}

/// Test-API lock ids are the seed's; anything else is a bug in the test.
fn seeded_lock_id(raw: &str) -> Uuid {
    raw.parse()
        .unwrap_or_else(|_| panic!("{raw:?} is not a lock id of the seed"))
}
