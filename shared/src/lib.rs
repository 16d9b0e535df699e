//! What the lockbridge services share: configuration, telemetry, the database, the AMQP
//! runtime, event and domain types, and the RemoteLock client.

pub mod amqp;
pub mod auth;
pub mod configuration;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod events;
pub mod failures;
pub mod health;
pub mod html;
pub mod input;
pub mod jobs;
pub mod outbox;
pub mod problem;
pub mod provisioning;
pub mod remotelock;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod wakeup;
