//! A stand-in for the Springshare LibCal API v1.1 (OAuth client credentials and the space
//! endpoints), following `shared/libcal-api.md`. Tests start it in-process with
//! [`Simulator::start`] and drive it through [`SimHandle`]; the binary serves it for local runs.

mod bookings;
mod catalogue;
mod config;
mod control;
mod demo;
mod errors;
mod faults;
mod guard;
mod model;
mod oauth;
mod params;
mod request_log;
mod router;
mod state;
mod tokens;

use std::io;
use std::sync::Arc;

use chrono_tz::Tz;
use url::Url;

pub use config::{BinConfig, ConfigError, DEFAULT_BIN_LISTEN, OverLimit, SimConfig};
pub use demo::Demo;
pub use faults::{Fault, FaultKind};
pub use model::{CancelledBy, Status};
pub use request_log::RequestRecord;
pub use state::{BookingRef, NewBooking, NewRow, NewSpace, RowEdit, SimError};

use state::SimState;

pub struct Simulator;

impl Simulator {
    /// Binds `config.listen` and serves until [`SimHandle::shutdown`] or until the last handle
    /// is dropped.
    pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
        let bound = sim_support::bind(config.listen).await?;
        let state = Arc::new(SimState::new(config));
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
    /// E.g. `http://127.0.0.1:PORT/`: the API at `{base}1.1/...` and `{base}api/1.1/...`.
    pub fn base_url(&self) -> Url {
        self.serving.base_url.clone()
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    pub fn add_location(&self, name: &str, time_zone: Tz) -> u32 {
        self.state.add_location(name, time_zone)
    }

    pub fn add_category(&self, lid: u32, name: &str) -> Result<u32, SimError> {
        self.state.add_category(lid, name)
    }

    pub fn add_space(&self, cid: u32, space: NewSpace) -> Result<u32, SimError> {
        self.state.add_space(cid, space)
    }

    /// Only spaces that are not bookable as a whole have seats.
    pub fn add_seat(&self, space_id: u32, name: &str) -> Result<u32, SimError> {
        self.state.add_seat(space_id, name)
    }

    /// The demo catalogue of the binary (`LIBCAL_SIM_DEMO=1`).
    pub fn load_demo(&self) -> Demo {
        demo::load(&self.state)
    }

    /// One transaction: every row shares the returned `bookId`.
    pub fn book(&self, booking: NewBooking) -> Result<BookingRef, SimError> {
        self.state.book(booking)
    }

    /// `Tentative` → `Confirmed` (the patron followed the e-mail link).
    pub fn confirm(&self, book_id: &str) -> Result<(), SimError> {
        self.state.confirm(book_id)
    }

    /// `Mediated Tentative` → `Mediated Approved`.
    pub fn approve(&self, book_id: &str) -> Result<(), SimError> {
        self.state.approve(book_id)
    }

    /// `Mediated Tentative` → `Mediated Denied`; the rows then vanish from the API unless
    /// [`SimConfig::show_denied`].
    pub fn deny(&self, book_id: &str) -> Result<(), SimError> {
        self.state.deny(book_id)
    }

    /// Any live status → `Cancelled by …`, stamping `cancelled`.
    pub fn cancel(&self, book_id: &str, by: CancelledBy) -> Result<(), SimError> {
        self.state.cancel(book_id, by)
    }

    /// The transaction is deleted: its rows vanish without a `Cancelled …` status.
    pub fn delete(&self, book_id: &str) -> Result<(), SimError> {
        self.state.delete(book_id)
    }

    /// A staff edit of one row's space, seat or times; its `id` stays.
    pub fn edit_row(&self, row_id: u64, edit: RowEdit) -> Result<(), SimError> {
        self.state.edit_row(row_id, edit)
    }

    pub fn inject(&self, fault: Fault) {
        self.state.faults.push(fault);
    }

    /// Every token issued so far stops working at once.
    pub fn revoke_tokens(&self) {
        self.state.tokens.revoke_all();
    }

    /// API and token requests so far, oldest first (`/_sim` controls are not logged).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests.snapshot()
    }

    pub fn shutdown(&self) {
        self.state.shutdown.cancel();
    }
}
