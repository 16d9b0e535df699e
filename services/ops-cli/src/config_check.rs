//! `lockbridge config check`: reads the configuration as each service does and runs that
//! service's own checks of it (`Service::check`, the first thing its `build` does), so what it
//! says is exactly what the service would stop with, without connecting anything.

use std::{collections::BTreeMap, io::Write};

use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use config::{Value, ValueKind};
use lockbridge_runtime::{
    configuration::{Settings, layers},
    service::Service,
    telemetry::error_chain,
};
use secrecy::ExposeSecret;
use serde::Serialize;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Says, per service, whether it would start with this configuration, or the one sentence
    /// it would stop with (a setting missing, malformed, or a demo credential outside demo
    /// mode). Connects to nothing; exits 1 when any service would not start.
    Check {
        /// Check this service only.
        #[arg(long, value_enum)]
        service: Option<ServiceName>,
        /// Also print every setting as read, secrets masked.
        #[arg(long)]
        show: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServiceName {
    BookingIntake,
    LockProvisioner,
    Notifier,
    Admin,
    LibcalConnector,
}

impl ServiceName {
    /// The service's checks, as its binary runs them: its settings read, then checked.
    fn verdict(self) -> Verdict {
        match self {
            Self::BookingIntake => verdict::<booking_intake::Application>(true),
            Self::LockProvisioner => verdict::<lock_provisioner::Application>(true),
            Self::Notifier => verdict::<notifier::Application>(true),
            Self::Admin => verdict::<admin::Application>(true),
            // It runs at the library, far from RabbitMQ: it never reads amqp.url.
            Self::LibcalConnector => verdict::<libcal_connector::Application>(false),
        }
    }
}

#[derive(Serialize)]
struct Verdict {
    service: &'static str,
    /// The sentence the service would stop with; `None`: it would start.
    problem: Option<String>,
}

fn verdict<S: Service>(uses_broker: bool) -> Verdict {
    let problem = match Settings::<S::Sections>::load() {
        Err(error) => Some(error_chain(&error)),
        Ok(settings) => connection_urls(&settings, uses_broker)
            .err()
            .or_else(|| S::check(&settings).err().map(|error| error_chain(&error))),
    };
    Verdict {
        service: S::NAME,
        problem,
    }
}

/// The URLs every service connects with are read by their clients only when connecting: a
/// malformed one is caught here instead.
fn connection_urls<T>(settings: &Settings<T>, uses_broker: bool) -> Result<(), String> {
    let mut urls = vec![(
        "database.url",
        settings.database.url.expose_secret(),
        &["postgres", "postgresql"][..],
    )];
    if uses_broker {
        urls.push((
            "amqp.url",
            settings.amqp.url.expose_secret(),
            &["amqp", "amqps"],
        ));
    }
    for (setting, value, schemes) in urls {
        // The value is never quoted: it holds a password.
        match url::Url::parse(value) {
            Ok(url) if schemes.contains(&url.scheme()) => {}
            Ok(_) => return Err(format!("{setting} must be a {} URL", schemes[0])),
            Err(error) => return Err(format!("{setting} is not a URL ({error})")),
        }
    }
    Ok(())
}

pub(crate) fn run(command: Command, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let Command::Check { service, show } = command;
    let services = match service {
        Some(one) => vec![one],
        None => ServiceName::value_variants().to_vec(),
    };
    let verdicts: Vec<Verdict> = services.into_iter().map(ServiceName::verdict).collect();
    crate::report(out, json, &verdicts, &["SERVICE", "CHECK"], |v| {
        vec![
            v.service.to_owned(),
            v.problem.clone().unwrap_or_else(|| "ok".to_owned()),
        ]
    })?;
    if show {
        show_settings(out, json)?;
    }
    let failing = verdicts.iter().filter(|v| v.problem.is_some()).count();
    if failing > 0 {
        bail!(
            "{failing} of {} service(s) would not start with this configuration",
            verdicts.len()
        );
    }
    Ok(())
}

/// Every setting as the layers give it, by its dotted name, secrets masked.
fn show_settings(out: &mut impl Write, json: bool) -> anyhow::Result<()> {
    let table = config::Source::collect(&layers().build()?)?;
    let mut settings = BTreeMap::new();
    flatten("", table.into_iter(), &mut settings);
    if json {
        serde_json::to_writer_pretty(&mut *out, &settings)?;
        writeln!(out)?;
    } else {
        let rows: Vec<Vec<String>> = settings.into_iter().map(|(k, v)| vec![k, v]).collect();
        crate::table(out, &["SETTING", "VALUE"], &rows)?;
    }
    Ok(())
}

fn flatten(
    prefix: &str,
    entries: impl Iterator<Item = (String, Value)>,
    settings: &mut BTreeMap<String, String>,
) {
    for (key, value) in entries {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value.kind {
            ValueKind::Table(table) => flatten(&name, table.into_iter(), settings),
            kind => {
                let text = Value::new(None, kind).to_string();
                let shown = masked(&name, &text);
                settings.insert(name, shown);
            }
        }
    }
}

/// What may be shown of a setting: a credential not at all, a URL without its password.
fn masked(name: &str, value: &str) -> String {
    const CREDENTIALS: [&str; 4] = ["secret", "token", "key", "password"];
    if CREDENTIALS.iter().any(|word| name.contains(word)) {
        return if value.is_empty() {
            String::new()
        } else {
            "****".to_owned()
        };
    }
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            url.set_password(Some("****"))
                .expect("a URL with a password takes another");
            url.to_string()
        }
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn credentials_and_passwords_are_masked_and_the_rest_is_shown() {
        assert_eq!(masked("admin.api_token", "s3cret"), "****");
        assert_eq!(masked("intake.tokens.libcal", "s3cret"), "****");
        assert_eq!(masked("remotelock.token_encryption_key", "x"), "****");
        assert_eq!(masked("libcal.client_secret", ""), "");
        assert_eq!(
            masked("database.url", "postgres://lb:hunter2@db:5432/lockbridge"),
            "postgres://lb:****@db:5432/lockbridge"
        );
        assert_eq!(
            masked("smtp.url", "smtp://127.0.0.1:1025"),
            "smtp://127.0.0.1:1025"
        );
        assert_eq!(masked("provisioner.lead_time", "15m"), "15m");
    }
}
