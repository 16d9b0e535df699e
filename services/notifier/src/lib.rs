//! notifier: emails patrons their door PIN when a `pin.issued` event arrives (design §1, §3.2).
//! The event becomes a durable job in the same transaction that claims it; the job sends the
//! email through the SMTP relay, retrying while the relay is down, and records the send so the
//! patron gets one email per PIN version. A second job queue emails staff each failure that
//! needs a person (`alerts`).

mod alert_email;
mod alerts;
pub mod configuration;
mod consumer;
mod email;
mod relay;
mod sender;
mod startup;

pub use configuration::{Sections, Settings};
pub use startup::Application;

/// The name under which this service claims events in `processed_events`.
pub const CONSUMER: &str = "notifier";
