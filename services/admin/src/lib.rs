//! admin: the RemoteLock authorization and the space↔lock links, as a JSON API for staff
//! tools (design §3.4) and as the staff web UI (`ui`), which signs in with staff accounts
//! (`staff`) and sits on the same handlers' queries.

mod auth;
mod authorization;
mod bookings;
pub mod cli;
pub mod configuration;
mod csv;
mod dead_letters;
mod failures;
mod links;
mod lock_health;
mod lock_watch;
mod locks;
mod retention;
mod settings;
mod spaces;
pub mod staff;
mod startup;
mod ui;
mod webhook;

pub use configuration::{Sections, Settings};
pub use startup::Application;
