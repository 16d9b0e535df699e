//! `lockbridge webhook register --url URL`: subscribes the admin's webhook endpoint to the
//! account's events in RemoteLock, with `remotelock.webhook_secret` as the secret RemoteLock
//! sends back (docs/operations.md, "What is on the door"). It uses the stored authorization,
//! as the services do: an operator holds no RemoteLock token. Running it again brings the
//! subscriber for that URL up to date (its secret; active again after RemoteLock deactivated
//! it) rather than making a second one.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use lockbridge_remotelock::{RemoteLockSettings, webhooks::Registered};
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Subscribes URL (HTTPS: RemoteLock calls nothing else; the admin's
    /// /remotelock/webhook behind your TLS proxy) to the events lockbridge applies.
    Register {
        #[arg(long)]
        url: String,
    },
}

#[derive(Deserialize)]
struct WebhookSections {
    remotelock: RemoteLockSettings,
}

pub(crate) async fn run(
    Command::Register { url }: Command,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let parsed = Url::parse(&url).with_context(|| format!("--url {url} is not a URL"))?;
    if parsed.scheme() != "https" {
        bail!("--url must be an HTTPS URL: RemoteLock delivers webhooks over HTTPS only");
    }
    let settings = crate::settings::<WebhookSections>()?;
    let remotelock = &settings.own.remotelock;
    settings.require(&remotelock.credentials())?;
    if remotelock.webhook_secret.expose_secret().trim().is_empty() {
        bail!(
            "remotelock.webhook_secret is not set; generate one with `openssl rand -base64 32` \
             and give the admin the same"
        );
    }
    let client = crate::remotelock(crate::connect(&settings).await?, remotelock)?;
    let registered = client
        .for_work(lockbridge_remotelock::Urgency::Urgent)
        .register_webhook(parsed.as_str(), &remotelock.webhook_secret)
        .await
        .context("RemoteLock refused the registration")?;
    if json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({"url": parsed.as_str(), "registered": registered}),
        )?;
        writeln!(out)?;
    } else {
        let what = match registered {
            Registered::Created => "subscribed",
            Registered::Updated => "already subscribed: secret set and active",
        };
        writeln!(out, "{} {what} to the account's events", parsed.as_str())?;
    }
    Ok(())
}
