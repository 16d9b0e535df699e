//! libcal-connector: brings a Springshare LibCal instance's spaces and bookings to
//! booking-intake (design §3.6). LibCal has no webhooks, so it polls; it is an upstream of
//! the intake API like any other, with its own source token, and keeps its own state.

mod catalogue;
pub mod configuration;
mod health;
mod intake;
mod libcal;
mod mapping;
mod poll;
mod sender;
mod startup;
mod state;
mod window;

pub use configuration::{Sections, Settings};
pub use startup::Application;
