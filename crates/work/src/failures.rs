//! Failures that need a person (design §3.4, issue 5): a PIN that could not be issued, a
//! cancelled booking whose guest still opens the door, an email given up, an authorization
//! that stopped working. Each is one open row per booking and kind — which is what makes the
//! staff alert for it go out once — until the thing it is about succeeds and resolves it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

use lockbridge_domain::{BookingId, LockId};
use lockbridge_runtime::{
    jobs::{self, OnConflict, Retrying},
    wakeup::Channel,
};

/// The notifier's queue of staff alerts, one job per opened failure.
pub const ALERT_QUEUE: &str = "alert";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "failure_kind", rename_all = "snake_case")]
pub enum FailureKind {
    PinNotIssued,
    /// The most urgent: a booking that no longer wants a PIN still has a working one.
    PinNotRevoked,
    EmailNotSent,
    Authorization,
    /// The lock has not confirmed the booking's PIN and the booking starts soon.
    PinNotSynced,
    /// About a lock, not a booking: it is offline while bookings of its space start soon…
    LockOffline,
    /// … or its battery is low.
    LockBatteryLow,
}

/// What a staff retry runs again.
#[derive(Debug, Clone, Copy)]
pub enum RetryWith<'a> {
    /// The one job the failure is about.
    Job { queue: &'a str, key: &'a str },
    /// Every job of the queue that is failing (an authorization or relay fault stops them all).
    Queue(&'a str),
}

/// A failure as it is reported.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub kind: FailureKind,
    /// `None` for a fault of the whole system: the authorization, the SMTP relay.
    pub booking_id: Option<&'a BookingId>,
    /// Said to staff: what failed and why, never a PIN.
    pub reason: &'a str,
    pub attempts: i32,
    pub retry: RetryWith<'a>,
}

/// The staff alert job for one failure.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlertJob {
    pub failure_id: i64,
}

/// Opens the failure, or brings the open one up to date; a newly opened one gets its alert.
pub async fn report(
    tx: &mut Transaction<'_, Postgres>,
    report: Report<'_>,
) -> Result<(), sqlx::Error> {
    let (id, opened) = upsert(tx, &report).await?;
    if opened {
        let about = report.booking_id.map(BookingId::as_str);
        alert(tx, id, &id.to_string(), (report.kind, about, report.reason)).await?;
    }
    Ok(())
}

/// Opens a failure about a lock (offline, battery low), or brings the open one up to date;
/// a newly opened one gets its alert. Nothing retries it: the lock's own report resolves it.
pub async fn report_lock(
    tx: &mut Transaction<'_, Postgres>,
    kind: FailureKind,
    lock: &LockId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let (id, opened): (i64, bool) = sqlx::query_as(
        "INSERT INTO failures (kind, lock_id, reason) VALUES ($1, $2, $3)
         ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE
             SET reason = EXCLUDED.reason, updated_at = now()
         RETURNING id, (xmax = 0)",
    )
    .bind(kind)
    .bind(lock)
    .bind(reason)
    .fetch_one(&mut **tx)
    .await?;
    if opened {
        alert(tx, id, &id.to_string(), (kind, Some(lock.as_str()), reason)).await?;
    }
    Ok(())
}

/// The lock is well again, or no booking needs it soon.
pub async fn resolve_lock(
    db: impl PgExecutor<'_>,
    kind: FailureKind,
    lock: &LockId,
) -> Result<(), sqlx::Error> {
    sqlx::query(&resolving("$1", "'lock:' || $2"))
        .bind(kind)
        .bind(lock)
        .execute(db)
        .await?;
    Ok(())
}

/// As [`report`], and staff are alerted again even if it was open: the failure got worse
/// (a PIN still not on its lock as the booking's start comes closer). `step` names the
/// escalation, so each is alerted once.
pub async fn escalate(
    tx: &mut Transaction<'_, Postgres>,
    report: Report<'_>,
    step: i16,
) -> Result<(), sqlx::Error> {
    let (id, _) = upsert(tx, &report).await?;
    let about = report.booking_id.map(BookingId::as_str);
    alert(
        tx,
        id,
        &format!("{id}:{step}"),
        (report.kind, about, report.reason),
    )
    .await
}

/// Inserts the failure or updates the open one: its id, and whether it was opened now.
async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    report: &Report<'_>,
) -> Result<(i64, bool), sqlx::Error> {
    let (queue, key) = match report.retry {
        RetryWith::Job { queue, key } => (queue, Some(key)),
        RetryWith::Queue(queue) => (queue, None),
    };
    // `xmax = 0` only on a row this statement inserted.
    sqlx::query_as(
        "INSERT INTO failures (kind, booking_id, reason, attempts, job_queue, job_key)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE
             SET reason = EXCLUDED.reason, attempts = GREATEST(failures.attempts + 1, EXCLUDED.attempts),
                 job_queue = EXCLUDED.job_queue, job_key = EXCLUDED.job_key, updated_at = now()
         RETURNING id, (xmax = 0)",
    )
    .bind(report.kind)
    .bind(report.booking_id)
    .bind(report.reason)
    .bind(report.attempts)
    .bind(queue)
    .bind(key)
    .fetch_one(&mut **tx)
    .await
}

/// Queues the staff alert `key` for failure `id` (its kind, what it is about and why), once.
async fn alert(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    key: &str,
    (kind, about, reason): (FailureKind, Option<&str>, &str),
) -> Result<(), sqlx::Error> {
    let job = AlertJob { failure_id: id };
    jobs::enqueue(tx, ALERT_QUEUE, key, &job, Utc::now(), OnConflict::Ignore).await?;
    // The notifier runs alerts; the failure may open in any service.
    Channel::jobs(ALERT_QUEUE).notify(&mut **tx).await?;
    tracing::warn!(
        failure_id = id,
        ?kind,
        about,
        reason,
        "failure reported; staff will be alerted"
    );
    Ok(())
}

/// The thing the failure was about worked: it leaves the open list by itself.
pub async fn resolve(
    db: impl PgExecutor<'_>,
    kind: FailureKind,
    booking_id: Option<&BookingId>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&resolving("$1", "coalesce($2, '')"))
        .bind(kind)
        .bind(booking_id)
        .execute(db)
        .await?;
    Ok(())
}

/// The statement that resolves the open failures of `kind` about any of `subjects`, both SQL
/// expressions of the caller's statement (a booking's subject is its id, a system-wide
/// failure's is empty, a lock's is `lock:` and its id). The one way a failure is resolved:
/// a statement that resolves one beside its own write (a PIN issued, an email sent) takes it
/// as a CTE instead of a second round trip.
pub fn resolving(kind: &str, subjects: &str) -> String {
    format!(
        "UPDATE failures SET resolved_at = now(), updated_at = now()
         WHERE kind = {kind} AND subject IN ({subjects}) AND resolved_at IS NULL"
    )
}

/// Whether the failure is open: e.g. while the authorization is gone its one alert says it all,
/// and the bookings it stops open none of their own.
pub async fn is_open(
    db: impl PgExecutor<'_>,
    kind: FailureKind,
    booking_id: Option<&BookingId>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM failures
                        WHERE kind = $1 AND subject = coalesce($2, '') AND resolved_at IS NULL)",
    )
    .bind(kind)
    .bind(booking_id)
    .fetch_one(db)
    .await
}

/// An open failure as the admin API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Failure {
    pub id: i64,
    pub booking_id: Option<BookingId>,
    /// For a failure about a lock.
    pub lock_id: Option<LockId>,
    pub kind: FailureKind,
    pub reason: String,
    pub since: DateTime<Utc>,
    pub attempts: i32,
}

pub async fn open(db: impl PgExecutor<'_>) -> Result<Vec<Failure>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, booking_id, lock_id, kind, reason, since, attempts FROM failures
         WHERE resolved_at IS NULL ORDER BY since, id",
    )
    .fetch_all(db)
    .await
}

pub async fn find(db: impl PgExecutor<'_>, id: i64) -> Result<Option<Failure>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, booking_id, lock_id, kind, reason, since, attempts FROM failures WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What a staff retry came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Its jobs run again now, from their first attempt.
    Started,
    NoSuchFailure,
    AlreadyResolved,
}

/// Runs the failure's work again now. A running job is left to finish: it is already trying.
pub async fn retry(pool: &PgPool, id: i64) -> Result<Retry, sqlx::Error> {
    let target: Option<(Option<String>, Option<String>, bool)> = sqlx::query_as(
        "SELECT job_queue, job_key, resolved_at IS NOT NULL FROM failures WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((queue, key, resolved)) = target else {
        return Ok(Retry::NoSuchFailure);
    };
    if resolved {
        return Ok(Retry::AlreadyResolved);
    }
    if let Some(queue) = queue {
        let which = key.as_deref().map_or(Retrying::Failing, Retrying::Job);
        jobs::retry_now(pool, &queue, which).await?;
    }
    Ok(Retry::Started)
}
