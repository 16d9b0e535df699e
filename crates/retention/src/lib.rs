//! Retention (issue 9): a booking's personal data — the patron's name and address, the PIN, and
//! every row that quotes them — is purged `retention.days` after the booking ends, leaving the
//! booking's times, space, status and counts for reports; what only served the pipeline
//! (handled event ids, published events, finished jobs, expired OAuth states and staff
//! sessions) is pruned `retention.prune_after` after its use.
//!
//! The one writer of these rules across every service's tables (migrations/README.md): the
//! admin runs a [`pass`] every `retention.interval`, `lockbridge retention run` runs one now.
//! Rows go in batches, one short transaction each, so a first pass on a large database holds
//! no lock for long.

mod counts;
pub mod pass;
mod prune;
mod purge;
mod settings;

pub use counts::{Action, Counted, Counts};
pub use pass::{Mode, PassError, run_exclusive};
pub use purge::PURGED;
pub use settings::{RetentionDays, RetentionSettings, Sections};
