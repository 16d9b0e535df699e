//! `lockbridge jobs list|retry|cancel`: the durable jobs (queues `provision`, `email`, `alert`).

use std::io::Write;

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use lockbridge_runtime::jobs::{Retrying, retry_now};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Jobs that are not finished (queued, running, failed), most urgent first.
    List {
        /// Only this queue (provision, email, alert).
        #[arg(long)]
        queue: Option<String>,
        /// Only failed jobs.
        #[arg(long)]
        failed: bool,
    },
    /// Runs a job again now, from its first attempt (`--failing`: every failing job of the
    /// queue). A running job is left alone: it is already trying.
    Retry {
        queue: String,
        /// The job's key (for provisioning, the booking id).
        #[arg(required_unless_present = "failing")]
        key: Option<String>,
        #[arg(long, conflicts_with = "key")]
        failing: bool,
    },
    /// Stops a queued or failed job for good: it is marked failed, "cancelled by an operator".
    /// For a provisioning job the booking's PIN is then neither issued nor revoked by it.
    Cancel { queue: String, key: String },
}

#[derive(Serialize, sqlx::FromRow)]
struct JobRow {
    queue: String,
    key: String,
    state: String,
    attempts: i32,
    run_at: DateTime<Utc>,
    last_error: Option<String>,
}

pub(crate) async fn run(
    pool: &PgPool,
    command: Command,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        Command::List { queue, failed } => list(pool, queue.as_deref(), failed, json, out).await,
        Command::Retry {
            queue,
            key,
            failing,
        } => {
            let which = match (&key, failing) {
                (_, true) => Retrying::Failing,
                (Some(key), false) => Retrying::Job(key),
                (None, false) => bail!("name the job's key, or --failing"),
            };
            let retried = retry_now(pool, &queue, which).await?;
            if retried == 0 {
                bail!("no such job to retry in queue {queue} (a running job is already trying)");
            }
            writeln!(out, "{retried} job(s) of {queue} will run again now")?;
            Ok(())
        }
        Command::Cancel { queue, key } => {
            let cancelled = sqlx::query(
                "UPDATE jobs SET state = 'failed', last_error = 'cancelled by an operator',
                     lease_until = NULL, updated_at = now()
                 WHERE queue = $1 AND job_key = $2 AND state IN ('queued', 'failed')",
            )
            .bind(&queue)
            .bind(&key)
            .execute(pool)
            .await?
            .rows_affected();
            if cancelled == 0 {
                bail!(
                    "no queued or failed job {key} in queue {queue} (a running job cannot be \
                     cancelled; a finished one needs nothing)"
                );
            }
            writeln!(out, "job {key} of {queue} cancelled")?;
            Ok(())
        }
    }
}

async fn list(
    pool: &PgPool,
    queue: Option<&str>,
    failed: bool,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let jobs: Vec<JobRow> = sqlx::query_as(
        "SELECT queue, job_key AS key, state::text AS state, attempts, run_at, last_error
         FROM jobs
         WHERE state <> 'succeeded' AND ($1::text IS NULL OR queue = $1)
           AND (NOT $2 OR state = 'failed')
         ORDER BY priority_at, id",
    )
    .bind(queue)
    .bind(failed)
    .fetch_all(pool)
    .await?;
    crate::report(
        out,
        json,
        &jobs,
        &["QUEUE", "KEY", "STATE", "ATTEMPTS", "RUNS AT", "LAST ERROR"],
        |job| {
            vec![
                job.queue.clone(),
                job.key.clone(),
                job.state.clone(),
                job.attempts.to_string(),
                job.run_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                job.last_error.clone().unwrap_or_default(),
            ]
        },
    )
}
