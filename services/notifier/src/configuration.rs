//! notifier's settings: the sections every service reads, `smtp`, `notifier`, `alerts` and
//! `pins`.
//! Those of the other services are not parsed here.

use std::net::SocketAddr;

use lockbridge_runtime::configuration;
use lockbridge_sealing::pins::PinKeySettings;
use secrecy::SecretString;
use serde::Deserialize;

pub type Settings = configuration::Settings<Sections>;

/// The sections only the notifier reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub smtp: SmtpSettings,
    pub notifier: NotifierSettings,
    pub alerts: AlertSettings,
    pub pins: PinKeySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    /// `smtp://host:port`, `smtps://user:pass@host` … as lettre's `from_url` reads it.
    pub url: SecretString,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotifierSettings {
    pub listen: SocketAddr,
    /// Emails sent at once by one process.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertSettings {
    /// Staff addresses emailed each failure that needs a person, comma-separated; empty: none.
    pub recipients: String,
}
