//! The durable requests one service makes of another through PostgreSQL rather than an event:
//! provisioning a booking again (asked by the provisioner's consumer and sync watch, and by
//! the admin API's links and reissues), and the failures that need a person (opened by any
//! service, alerted by the notifier, listed and retried by the admin API). Each is a row and a job, written in the
//! caller's transaction, so the request holds exactly when the change that made it does.

pub mod failures;
pub mod provisioning;
