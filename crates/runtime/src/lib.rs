//! What runs every lockbridge service, whatever its logic: the layered configuration,
//! logging, the PostgreSQL pool and its migrations, the AMQP connection, the transactional
//! outbox, durable jobs and their wake-ups, and the service lifecycle (startup in one clear
//! sentence, health endpoints, supervision, shutdown on SIGTERM).

pub mod amqp;
pub mod at_rest;
pub mod configuration;
pub mod db;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod outbox;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod wakeup;
