//! admin: the RemoteLock authorization and the space↔lock links, as a JSON API for staff
//! tools (design §3.4). The HTML UI will sit on the same handlers' queries.

mod auth;
mod authorization;
mod bookings;
pub mod configuration;
mod failures;
mod links;
mod locks;
mod spaces;
mod startup;

pub use configuration::{Sections, Settings};
pub use startup::Application;
