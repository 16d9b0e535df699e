//! What the lockbridge services share: the RemoteLock client and the durable cross-service
//! requests.

pub mod crypto;
pub mod failures;
pub mod provisioning;
pub mod remotelock;

// Moved to their own crates; re-exported until every service imports them from there.
pub use lockbridge_domain as domain;
pub use lockbridge_domain::events;
pub use lockbridge_http::{auth, html, input, problem};
pub use lockbridge_runtime::{
    amqp, configuration, db, health, jobs, outbox, shutdown, telemetry, wakeup,
};
pub mod service {
    pub use lockbridge_http::api_layers;
    pub use lockbridge_runtime::service::*;
}
