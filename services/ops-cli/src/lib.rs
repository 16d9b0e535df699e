//! The operators' command line (issue 9): what the queues hold and what to do about it, against
//! the same database the services use, read from the same configuration (`config/`,
//! `LOCKBRIDGE_CONFIG`, `LOCKBRIDGE__…` variables).

mod config_check;
mod dead_letters;
mod jobs;
mod keys;
mod outbox;
mod reconcile;
mod retention;
mod trace;
mod webhook;

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lockbridge_remotelock::{OAuthClient, RemoteLockClient, RemoteLockSettings, TokenManager};
use lockbridge_runtime::{configuration::Settings, db};
use sqlx::PgPool;

#[derive(Parser)]
#[command(
    name = "lockbridge",
    about = "Operate lockbridge: see its queues, follow a booking, retry or cancel its jobs, replay its dead letters, run retention, repair drift from RemoteLock, rotate its keys, check its configuration, migrate its database.",
    long_about = "Operate lockbridge: see its queues, follow a booking, retry or cancel its \
                  jobs, replay its dead letters, run retention, rotate its keys, check its configuration, migrate its database.\n\nIt reads the configuration as the services do (config/default.toml, \
                  config/local.toml or LOCKBRIDGE_CONFIG, then LOCKBRIDGE__SECTION__KEY variables) \
                  and needs only database.url (retention: and retention.*; keys: the keys too; reconcile: remotelock.* and pins.* too; dead-letters: only amqp.url; config check: nothing, it connects to nothing). Every command but `migrate` leaves the schema as it \
                  is. See docs/operations.md for when to use which."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of a table, for scripts.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// The outbox of each producer: events not yet confirmed by RabbitMQ, and the oldest's age.
    Outbox {
        #[command(subcommand)]
        command: outbox::Command,
    },
    /// The jobs (provisioning, emails, alerts): list them, run one again now, or cancel one.
    Jobs {
        #[command(subcommand)]
        command: jobs::Command,
    },
    /// Everything stored about one booking, in order: its states, events (written, published,
    /// handled), the PIN's history, each RemoteLock request made for it, what its door
    /// reported, jobs, emails and failures. Never a PIN or an address.
    Trace { booking_id: String },
    /// Brings the database schema up to date (the services do it at start too).
    Migrate,
    /// The messages consumers could not handle: list and show them, replay them to where they
    /// were published, or purge them. Needs amqp.url (and no database).
    DeadLetters {
        #[command(subcommand)]
        command: dead_letters::Command,
    },
    /// Retention now: purges the personal data of bookings that ended retention.days ago and
    /// prunes handled events, published events and finished jobs, as the admin does every
    /// retention.interval.
    Retention {
        #[command(subcommand)]
        command: retention::Command,
    },
    /// Drift repair now: compares RemoteLock with what lockbridge left there (guests deleted,
    /// deactivated or changed by hand, grants removed, locks gone), queues the repair of what
    /// is lockbridge's and reports the rest, as each provisioner does every
    /// reconcile.interval. Needs RemoteLock access (remotelock.*, pins.*), like the services.
    Reconcile {
        /// Finds only: prints the drift and changes nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// RemoteLock's webhooks: subscribe the admin's endpoint to the account's events, with the
    /// stored authorization. Needs remotelock.* (webhook_secret included).
    Webhook {
        #[command(subcommand)]
        command: webhook::Command,
    },
    /// The encryption keys of what is stored (PINs, RemoteLock tokens): reseal everything
    /// under the current keys after a new key is set, so the previous one can go.
    Keys {
        #[command(subcommand)]
        command: keys::Command,
    },
    /// The configuration as each service reads it: would it start, and if not, why.
    Config {
        #[command(subcommand)]
        command: config_check::Command,
    },
}

/// Only the common sections: the command line has none of its own.
#[derive(serde::Deserialize)]
struct NoSections {}

/// Runs the command, writing what it has to say to `out`.
pub async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Outbox { command } => outbox::run(&database().await?, command, json, out).await,
        Command::Jobs { command } => jobs::run(&database().await?, command, json, out).await,
        Command::Trace { booking_id } => {
            trace::run(&database().await?, &booking_id, json, out).await
        }
        Command::Migrate => migrate(&database().await?, out).await,
        Command::Keys { command } => keys::run(&database().await?, command, json, out).await,
        Command::Retention { command } => retention::run(command, json, out).await,
        Command::Reconcile { dry_run } => reconcile::run(dry_run, json, out).await,
        Command::Webhook { command } => webhook::run(command, json, out).await,
        // The broker's commands need no database, and the others no broker.
        Command::DeadLetters { command } => dead_letters::run(command, json, out).await,
        Command::Config { command } => config_check::run(command, json, out),
    }
}

async fn database() -> anyhow::Result<PgPool> {
    connect(&settings::<NoSections>()?).await
}

/// The common sections and a command's own (`T`), as the services read them.
fn settings<T: serde::de::DeserializeOwned>() -> anyhow::Result<Settings<T>> {
    Settings::<T>::load().context("the configuration is not valid")
}

async fn connect<T>(settings: &Settings<T>) -> anyhow::Result<PgPool> {
    db::connect(&settings.database)
        .await
        .context("cannot connect to database.url")
}

/// A RemoteLock client on the stored authorization, as the services have: its tokens read
/// (and refreshed) in `pool`'s database.
fn remotelock(pool: PgPool, remotelock: &RemoteLockSettings) -> anyhow::Result<RemoteLockClient> {
    let tokens = TokenManager::new(
        pool,
        remotelock.token_sealer()?,
        OAuthClient::new(remotelock)?,
    );
    Ok(RemoteLockClient::new(remotelock, tokens)?)
}

async fn migrate(pool: &PgPool, out: &mut impl Write) -> anyhow::Result<()> {
    db::MIGRATOR
        .run(pool)
        .await
        .context("cannot bring the database schema up to date")?;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    writeln!(
        out,
        "the schema is up to date ({applied} migrations applied)"
    )?;
    Ok(())
}

/// Writes `items` as JSON, or as a table of `header` and one row per item.
fn report<T: serde::Serialize>(
    out: &mut impl Write,
    json: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, items)?;
        writeln!(out)?;
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        table(out, header, &rows)?;
    }
    Ok(())
}

/// Rows as a table: a header, then each row, columns padded to their widest cell.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
