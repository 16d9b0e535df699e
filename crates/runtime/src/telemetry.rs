//! Logging: human-readable by default, JSON lines when `log.format = "json"`.

use serde::Deserialize;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

/// Installs the global subscriber. Safe to call more than once (tests): later calls are no-ops.
pub fn init(service: &'static str, settings: &LogSettings) {
    // lapin logs a returned message with its body at WARN, and a body can hold a PIN: its
    // warnings stay off, the relay reports the failure itself.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},lapin=error,sqlx=warn", settings.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Human => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
    };
    if result.is_ok() {
        tracing::info!(service, "logging started");
    }
}

/// Renders an error with its whole cause chain on one line, for logs and stored failures.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some libraries repeat their source in their own message; say it once.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let error = Outer(Middle(std::io::Error::other("refused")));
        assert_eq!(error_chain(&error), "outer: middle: refused");
    }
}
