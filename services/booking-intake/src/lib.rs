//! booking-intake: the only way bookings enter lockbridge, over HTTP (design §3.1) or AMQP
//! (§3.5). Validates, orders by revision, stores, and writes the event to the outbox in the
//! same transaction.

mod amqp_intake;
mod auth;
mod batch;
mod bookings;
mod catalogue;
pub mod configuration;
mod outcomes;
mod startup;
mod view;
mod writer;

pub use configuration::{Sections, Settings};
pub use startup::Application;

/// The producer name of this service's outbox rows.
pub const PRODUCER: &str = "booking-intake";
