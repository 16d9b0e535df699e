//! Test harness: every test gets its own PostgreSQL database and its own RabbitMQ virtual
//! host, so tests run in parallel against the real servers without seeing each other. The
//! services run in-process, the RemoteLock simulator on a free port, and emails go to the
//! real SMTP server (MailDev) on loopback.

pub mod admin_api;
pub mod broker;
pub mod browser;
pub mod database;
pub mod intake_api;
pub mod libcal;
pub mod logs;
pub mod mailbox;
pub mod scrape;
pub mod services;
pub mod smtp_relay;
pub mod system;
pub mod tap;

pub use broker::TestBroker;
pub use database::TestDatabase;
pub use mailbox::Mailbox;
pub use smtp_relay::{Script, ScriptedRelay};

/// Where the test servers are; override with the same variables CI sets.
pub fn postgres_admin_url() -> String {
    std::env::var("LOCKBRIDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}
