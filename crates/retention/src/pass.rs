//! One pass: the purge, then the prune, under an advisory lock so that two admin processes (or
//! an admin and `lockbridge retention run`) never work at once.

use chrono::Utc;
use lockbridge_runtime::db::SessionLock;
use sqlx::{Connection, PgConnection, PgPool};

use crate::{counts::Counts, prune::prune, purge::purge, settings::RetentionSettings};

/// Rows per statement: small enough that no statement holds its locks for long.
pub(crate) const BATCH: u64 = 1000;

/// The session lock one pass holds (`pg_locks.objid` shows it); taken with its connection, so a
/// process that dies lets go.
pub const PASS_LOCK: i64 = 0x7265_7465_6e74; // "retent"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Purge and prune.
    Apply,
    /// The same statements in one transaction that is rolled back: the counts are what a run
    /// would do now, and nothing changes.
    DryRun,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("cannot get a database connection for the retention pass")]
    Connect(#[source] sqlx::Error),
    #[error("the retention pass failed; what it finished before stays done")]
    Database(#[from] sqlx::Error),
}

/// Runs one pass now unless another is running; `None` then. Counts each table's rows.
pub async fn run_exclusive(
    pool: &PgPool,
    settings: &RetentionSettings,
    mode: Mode,
) -> Result<Option<Counts>, PassError> {
    let Some(mut lock) = SessionLock::try_take(pool, PASS_LOCK)
        .await
        .map_err(PassError::Connect)?
    else {
        return Ok(None);
    };
    let passed = pass(lock.connection(), settings, mode).await;
    lock.release(passed.is_ok()).await;
    let counts = passed?;
    if mode == Mode::Apply {
        for counted in counts.iter() {
            metrics::counter!("lockbridge_retention_rows_total", "table" => counted.table, "action" => counted.action.as_str())
                .increment(counted.rows);
        }
    }
    Ok(Some(counts))
}

async fn pass(
    conn: &mut PgConnection,
    settings: &RetentionSettings,
    mode: Mode,
) -> Result<Counts, sqlx::Error> {
    let now = Utc::now();
    let ended_before = now - settings.days.as_duration();
    let used_before =
        now - chrono::Duration::from_std(settings.prune_after).unwrap_or(chrono::Duration::MAX);
    let mut counts = Counts::default();
    match mode {
        Mode::Apply => {
            purge(conn, ended_before, &mut counts).await?;
            prune(conn, used_before, now, &mut counts).await?;
        }
        Mode::DryRun => {
            // Each batch's own transaction becomes a savepoint inside this one.
            let mut all = conn.begin().await?;
            purge(&mut all, ended_before, &mut counts).await?;
            prune(&mut all, used_before, now, &mut counts).await?;
            all.rollback().await?;
        }
    }
    Ok(counts)
}
