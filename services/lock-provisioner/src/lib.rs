//! lock-provisioner: turns booking events into RemoteLock access guests with PINs.
//!
//! Events only say "this booking changed": the consumer records that as a durable job and
//! acknowledges. The job reconciles RemoteLock with the booking as currently stored, so
//! duplicate or out-of-order events cannot move a PIN backwards, and retries survive restarts.

pub mod configuration;
mod consumer;
mod door_events;
pub mod drift;
mod lock_zones;
mod pin_choice;
mod plan;
mod reconcile;
mod startup;
mod store;
mod sync_alerts;

pub use configuration::{Sections, Settings};
pub use startup::Application;

/// The producer name of this service's outbox rows, and its consumer name for deduplication.
pub const SERVICE: &str = "lock-provisioner";
