//! Durable jobs: work that must survive restarts and be retried with backoff without holding
//! a broker delivery (design §4). Claimed with `FOR UPDATE SKIP LOCKED` under a lease, soonest
//! deadline first; the code that queues a job wakes the workers (see `wakeup`).

use std::{future::Future, sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    at_rest::AtRest,
    telemetry::error_chain,
    wakeup::{Channel, Wakeup},
};

/// Which jobs of a queue [`retry_now`] runs again.
#[derive(Debug, Clone, Copy)]
pub enum Retrying<'a> {
    /// This job, unless it is running (then it is already trying).
    Job(&'a str),
    /// Every job that is failing: stopped for good, or waiting to retry after an error. A
    /// fresh RemoteLock authorization can cure what a lost one made fail.
    Failing,
}

/// Runs the jobs again now, from their first attempt, waking the queue's workers wherever they
/// run. Returns how many.
pub async fn retry_now(db: &PgPool, queue: &str, which: Retrying<'_>) -> Result<u64, sqlx::Error> {
    let key = match which {
        Retrying::Job(key) => Some(key),
        Retrying::Failing => None,
    };
    let retried = sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), updated_at = now()
         WHERE queue = $1
           AND CASE WHEN $2::text IS NULL
                    THEN state = 'failed' OR (state = 'queued' AND last_error IS NOT NULL)
                    ELSE job_key = $2 AND state <> 'running' END",
    )
    .bind(queue)
    .bind(key)
    .execute(db)
    .await?;
    Channel::jobs(queue).notify(db).await?;
    Ok(retried.rows_affected())
}

/// Which of the jobs `keys` are queued or running. Locks the rows of all of them, whatever
/// their state, until the caller's transaction ends, so no worker claims them and no other
/// transaction requests them meanwhile; in key order, so two callers cannot deadlock.
pub async fn pending(
    tx: &mut Transaction<'_, Postgres>,
    queue: &str,
    keys: &[&str],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let jobs: Vec<(String, bool)> = sqlx::query_as(
        "SELECT job_key, state IN ('queued', 'running') FROM jobs
         WHERE queue = $1 AND job_key = ANY($2)
         ORDER BY job_key FOR UPDATE",
    )
    // Planned anew each time: a plan cached while the table was small scans all of it.
    .persistent(false)
    .bind(queue)
    .bind(keys)
    .fetch_all(&mut **tx)
    .await?;
    Ok(jobs
        .into_iter()
        .filter_map(|(key, pending)| pending.then_some(key))
        .collect())
}

/// Names the booking a job (or a delivery) works on in the current span, so every line logged
/// from here on carries it, its correlation id and the upstream's trace id when there is one.
pub fn record_booking(
    booking_id: &str,
    correlation_id: &uuid::Uuid,
    trace: Option<&lockbridge_domain::TraceParent>,
) {
    let span = tracing::Span::current();
    span.record("booking_id", booking_id);
    span.record("correlation_id", tracing::field::display(correlation_id));
    if let Some(trace) = trace {
        span.record("trace_id", trace.trace_id());
    }
}

/// What a new request for an existing job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Run it again with the new payload (a booking changed: reconcile once more).
    Requeue,
    /// Keep the existing job (an email for this PIN version is already on its way or sent).
    Ignore,
}

/// A job to queue for an event, unless the event was handled before.
pub struct EventJob {
    pub event_id: uuid::Uuid,
    pub key: String,
    pub payload: serde_json::Value,
    pub priority_at: DateTime<Utc>,
}

/// Claims the events for `consumer` and adds, for each one not claimed before, its job to
/// `queue` unless a job of that key exists (`OnConflict::Ignore`): what
/// [`crate::db::claim_events`] and [`enqueue`] do in a transaction, in one statement, which is
/// atomic by itself. A consumer whose events arrive one at a time paid four round trips for
/// each. Answers the events that were new.
pub async fn enqueue_for_new_events(
    db: &PgPool,
    consumer: &str,
    queue: &str,
    jobs: &[EventJob],
) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.event_id).collect();
    let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
    let payloads: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.payload).collect();
    let priorities: Vec<DateTime<Utc>> = jobs.iter().map(|j| j.priority_at).collect();
    // In key order, so two processes inserting the same keys never wait on each other in a
    // cycle.
    sqlx::query_scalar(&format!(
        "WITH fresh AS ({claim}),
         queued AS (
             INSERT INTO jobs (queue, job_key, payload, priority_at)
             SELECT $3, j.job_key, j.payload, j.priority_at
             FROM unnest($2::uuid[], $4::text[], $5::jsonb[], $6::timestamptz[])
                  AS j (event_id, job_key, payload, priority_at)
             JOIN fresh USING (event_id)
             ORDER BY j.job_key
             ON CONFLICT (queue, job_key) DO NOTHING)
         SELECT event_id FROM fresh",
        claim = crate::db::CLAIM_EVENTS
    ))
    .bind(consumer)
    .bind(ids)
    .bind(queue)
    .bind(keys)
    .bind(payloads)
    .bind(priorities)
    .fetch_all(db)
    .await
}

/// Adds or renews the job `key` in `queue` inside the caller's transaction. `priority_at` orders
/// a backlog: the soonest deadline runs first.
pub async fn enqueue<T: Serialize>(
    tx: &mut Transaction<'_, Postgres>,
    queue: &str,
    key: &str,
    payload: &T,
    priority_at: DateTime<Utc>,
    on_conflict: OnConflict,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let conflict = match on_conflict {
        OnConflict::Ignore => "DO NOTHING",
        // A running job keeps running; its version changes so it is queued again when done.
        OnConflict::Requeue => {
            "DO UPDATE SET payload = EXCLUDED.payload, priority_at = EXCLUDED.priority_at,
                version = jobs.version + 1, run_at = now(), updated_at = now(), last_error = NULL,
                attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END,
                state = CASE WHEN jobs.state = 'running' THEN 'running'::job_state ELSE 'queued' END"
        }
    };
    sqlx::query(&format!(
        "INSERT INTO jobs (queue, job_key, payload, priority_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (queue, job_key) {conflict}"
    ))
    .bind(queue)
    .bind(key)
    .bind(payload)
    .bind(priority_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How a run ended when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try: after `retry_after` if the other side said when, else per the policy.
    #[error("{error}")]
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Will not succeed by retrying: stop, and let staff see why.
    #[error("{0}")]
    Permanent(String),
    /// Not a failure: the job waits for something due at `until` (RemoteLock's rate-limit
    /// window has room again). Queued until then without holding a worker, and the attempt is
    /// not counted.
    #[error("deferred until {until}")]
    Deferred { until: DateTime<Utc> },
}

pub struct Job<T> {
    pub id: i64,
    pub key: String,
    pub payload: T,
    /// 1 on the first run.
    pub attempt: i32,
}

pub trait JobHandler: Send + Sync + 'static {
    type Payload: DeserializeOwned + Send + Sync;
    const QUEUE: &'static str;

    fn run(&self, job: &Job<Self::Payload>) -> impl Future<Output = Result<(), JobError>> + Send;

    /// What opens the payload's sealed fields before it is read, for a queue whose jobs hold
    /// a secret (the email jobs' PINs).
    fn at_rest(&self) -> Option<&dyn AtRest> {
        None
    }

    /// Called when retrying has not helped (a permanent error, or the attempts are spent):
    /// tell staff, and say whether to stop or to keep trying at the policy's longest delay.
    fn escalate(
        &self,
        job: &Job<Self::Payload>,
        error: &JobError,
    ) -> impl Future<Output = Result<Escalation, sqlx::Error>> + Send;
}

/// What a job does once it has been escalated to staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Stop: a person has to act (or retry it) first.
    Stop,
    /// Some work must not stop however long it fails: taking a cancelled booking's PIN away.
    KeepTrying,
}

/// Exponential backoff with jitter between attempts, capped, then give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: i32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // About a day and a half of retries before staff are asked to step in.
        Self {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30 * 60),
            max_attempts: 80,
        }
    }
}

impl RetryPolicy {
    pub fn delay_after(&self, attempt: i32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(usize::try_from(attempt.saturating_sub(1)).unwrap_or(0))
            .unwrap_or(self.max_delay)
    }
}

struct ClaimedRow {
    id: i64,
    job_key: String,
    payload: serde_json::Value,
    attempts: i32,
    version: i32,
    /// Fences this claim: renewing and finishing only work while the job is still ours.
    lease_token: uuid::Uuid,
}

/// What one claim took, and when the next job not taken is due.
struct Claimed {
    rows: Vec<ClaimedRow>,
    next_due: Option<DateTime<Utc>>,
}

/// A row of the claim's answer: a claimed job, or only `next_due` when none was claimed.
#[derive(sqlx::FromRow)]
struct ClaimAnswer {
    next_due: Option<DateTime<Utc>>,
    id: Option<i64>,
    job_key: Option<String>,
    payload: Option<serde_json::Value>,
    attempts: Option<i32>,
    version: Option<i32>,
    lease_token: Option<uuid::Uuid>,
}

impl ClaimAnswer {
    fn claimed(self) -> Option<ClaimedRow> {
        Some(ClaimedRow {
            id: self.id?,
            job_key: self.job_key?,
            payload: self.payload?,
            attempts: self.attempts?,
            version: self.version?,
            lease_token: self.lease_token?,
        })
    }
}

pub struct Worker<H> {
    pub pool: PgPool,
    pub handler: Arc<H>,
    pub policy: RetryPolicy,
    /// A job whose worker died is taken over once its lease has run out.
    pub lease: Duration,
    /// How many jobs this worker runs at once, each under its own lease. One job (one
    /// booking, one email) is never run twice at once, here or in another process: a claim
    /// takes it with `FOR UPDATE SKIP LOCKED` and marks it running.
    pub concurrency: usize,
}

const IDLE_POLL: Duration = Duration::from_secs(5);

impl<H: JobHandler> Worker<H> {
    /// Claims due jobs, soonest deadline first, as long as it has free slots, until `shutdown`;
    /// then lets the jobs it holds finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut wakeup = Wakeup::new(this.pool.clone(), Channel::jobs(H::QUEUE));
        let mut running = JoinSet::new();
        while !shutdown.is_cancelled() {
            wakeup.subscribe().await;
            let free = this.concurrency.max(1).saturating_sub(running.len());
            let mut pause = IDLE_POLL;
            if free > 0 {
                match this.claim(free).await {
                    Ok(Claimed { rows, next_due }) => {
                        let filled = rows.len() == free;
                        for row in rows {
                            running.spawn(Arc::clone(&this).execute(row));
                        }
                        if filled {
                            // More may be due: claim again once a slot is free.
                            continue;
                        }
                        pause = next_due
                            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                            .unwrap_or(IDLE_POLL)
                            .min(IDLE_POLL);
                    }
                    Err(error) => {
                        tracing::warn!(queue = H::QUEUE, error = %error_chain(&error), "job queue unavailable");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wakeup.wait(pause) => {},
                Some(ended) = running.join_next(), if !running.is_empty() => report(ended),
            }
        }
        while let Some(ended) = running.join_next().await {
            report(ended);
        }
        tracing::info!(queue = H::QUEUE, "job worker stopped");
    }

    /// Claims up to `slots` due jobs, most urgent first, each with its own lease token (a job
    /// whose lease ran out, its worker having died, is due again), and says when the next of
    /// the others is due: one statement for what was two on every turn of the worker's loop.
    async fn claim(&self, slots: usize) -> Result<Claimed, sqlx::Error> {
        // The statement sees the jobs as they were before its own update, so the ones it
        // claims are left out of the next due time by id. A claim that filled its slots needs
        // no next due time (the worker claims again as a slot frees): PostgreSQL skips that
        // scan, which under a backlog of deferred jobs reads all of them. One row at least:
        // with nothing claimed, the job columns are NULL and only `next_due` is read.
        let answer: Vec<ClaimAnswer> = sqlx::query_as(
            "WITH claimed AS (
                 UPDATE jobs SET state = 'running', attempts = attempts + 1,
                     lease_until = now() + $2, lease_token = gen_random_uuid(), updated_at = now()
                 WHERE id IN (
                     SELECT id FROM jobs
                     WHERE queue = $1 AND ((state = 'queued' AND run_at <= now())
                                           OR (state = 'running' AND lease_until < now()))
                     ORDER BY priority_at, id
                     LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id, job_key, payload, attempts, version, lease_token),
             next AS (
                 SELECT min(CASE WHEN state = 'queued' THEN run_at ELSE lease_until END) AS next_due
                 FROM jobs
                 WHERE (SELECT count(*) FROM claimed) < $3
                   AND queue = $1 AND state IN ('queued', 'running')
                   AND id NOT IN (SELECT id FROM claimed))
             SELECT next.next_due, claimed.* FROM next LEFT JOIN claimed ON TRUE",
        )
        .bind(H::QUEUE)
        .bind(interval(self.lease))
        .bind(i64::try_from(slots).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let next_due = answer.first().and_then(|a| a.next_due);
        let rows = answer
            .into_iter()
            .filter_map(ClaimAnswer::claimed)
            .collect();
        Ok(Claimed { rows, next_due })
    }

    /// Runs one claimed job and records how it ended.
    async fn execute(self: Arc<Self>, row: ClaimedRow) {
        let key = row.job_key.clone();
        // Every line the run logs carries the job and, once the handler has read them
        // (`record_booking`), the booking and the correlation id of its events.
        let span = tracing::info_span!(
            "job",
            queue = H::QUEUE,
            job_key = %key,
            booking_id = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let ran = self.run_claimed(row).instrument(span).await;
        if let Err(error) = ran {
            // The lease runs out and the job is claimed again.
            tracing::warn!(queue = H::QUEUE, %key, error = %error_chain(&error), "cannot record how the job ended");
        }
    }

    async fn run_claimed(&self, row: ClaimedRow) -> Result<(), sqlx::Error> {
        let claim = Claim {
            id: row.id,
            version: row.version,
            token: row.lease_token,
        };
        let mut payload = row.payload;
        let opened = match self.handler.at_rest() {
            Some(at_rest) => at_rest.open(&mut payload),
            None => Ok(()),
        };
        let read = opened.and_then(|()| serde_json::from_value(payload).map_err(Into::into));
        let payload = match read {
            Ok(payload) => payload,
            Err(error) => {
                let failed = Outcome::Failed(format!("unreadable job payload: {error}"));
                return self.finish(claim, failed).await;
            }
        };
        let job = Job {
            id: row.id,
            key: row.job_key,
            payload,
            attempt: row.attempts,
        };
        let Some(result) = self.run_leased(&job, row.lease_token).await else {
            tracing::warn!(queue = H::QUEUE, key = %job.key, "lost the job's lease; its new holder runs it");
            return Ok(());
        };
        let outcome = match result {
            Ok(()) => Outcome::Succeeded,
            Err(JobError::Deferred { until }) => {
                tracing::debug!(queue = H::QUEUE, key = %job.key, %until, "job deferred");
                Outcome::Deferred(until)
            }
            Err(error @ JobError::Transient { .. }) if job.attempt < self.policy.max_attempts => {
                let JobError::Transient { retry_after, .. } = &error else {
                    unreachable!()
                };
                let delay = retry_after.unwrap_or_else(|| self.policy.delay_after(job.attempt));
                tracing::warn!(queue = H::QUEUE, key = %job.key, attempt = job.attempt, ?delay, %error, "job failed; will retry");
                Outcome::Retry(delay, error.to_string())
            }
            Err(error) => match self.handler.escalate(&job, &error).await? {
                Escalation::Stop => {
                    tracing::error!(queue = H::QUEUE, key = %job.key, attempt = job.attempt, %error, "job failed for good");
                    Outcome::Failed(error.to_string())
                }
                Escalation::KeepTrying => {
                    let delay = self.policy.max_delay;
                    tracing::error!(queue = H::QUEUE, key = %job.key, attempt = job.attempt, ?delay, %error, "job escalated; still retrying");
                    Outcome::Retry(delay, error.to_string())
                }
            },
        };
        self.finish(claim, outcome).await
    }

    /// Runs the handler while renewing the job's lease, so a run that is slow (RemoteLock
    /// taking its time) is not taken over by another worker as if this one had died. `None`
    /// when the lease was lost anyway (renewals failed until it ran out and another worker
    /// claimed the job): the run is abandoned, since two must never act at once.
    async fn run_leased(
        &self,
        job: &Job<H::Payload>,
        token: uuid::Uuid,
    ) -> Option<Result<(), JobError>> {
        let run = self.handler.run(job);
        tokio::pin!(run);
        let mut renew = tokio::time::interval(self.lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                result = &mut run => return Some(result),
                _ = renew.tick() => {
                    let renewed = sqlx::query(
                        "UPDATE jobs SET lease_until = now() + $3
                         WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                    )
                    .bind(job.id)
                    .bind(token)
                    .bind(interval(self.lease))
                    .execute(&self.pool)
                    .await;
                    match renewed {
                        Ok(done) if done.rows_affected() == 0 => return None,
                        Ok(_) => {}
                        Err(error) => tracing::warn!(queue = H::QUEUE, key = %job.key, %error, "could not renew the job's lease"),
                    }
                }
            }
        }
    }

    async fn finish(&self, claim: Claim, outcome: Outcome) -> Result<(), sqlx::Error> {
        let deferred = matches!(outcome, Outcome::Deferred(_));
        // (the run's outcome as counted, the job's next state, when it runs next, the error)
        let (counted, state, delay, error) = match outcome {
            Outcome::Succeeded => ("succeeded", "succeeded", Duration::ZERO, None),
            Outcome::Retry(delay, error) => ("retried", "queued", delay, Some(error)),
            Outcome::Deferred(until) => (
                "deferred",
                "queued",
                (until - Utc::now()).to_std().unwrap_or_default(),
                None,
            ),
            Outcome::Failed(error) => ("failed", "failed", Duration::ZERO, Some(error)),
        };
        metrics::counter!("lockbridge_job_runs_total", "queue" => H::QUEUE, "outcome" => counted)
            .increment(1);
        // Asked for again while running (version moved on): run again now, whatever happened.
        // A deferred run gives its attempt back and keeps the last error, if any.
        sqlx::query(
            "UPDATE jobs SET
                 state = CASE WHEN version = $2 THEN $3::job_state ELSE 'queued' END,
                 run_at = CASE WHEN version = $2 THEN now() + $4 ELSE now() END,
                 attempts = CASE WHEN version <> $2 THEN 0
                                 WHEN $7 THEN attempts - 1 ELSE attempts END,
                 last_error = CASE WHEN $7 THEN last_error ELSE $5 END,
                 lease_until = NULL, updated_at = now()
             WHERE id = $1 AND lease_token = $6",
        )
        .bind(claim.id)
        .bind(claim.version)
        .bind(state)
        .bind(interval(delay))
        .bind(error)
        .bind(claim.token)
        .bind(deferred)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A job task that panicked leaves its job running under a lease that runs out: it is claimed
/// again then. Said loudly, since it is a bug.
fn report(ended: Result<(), tokio::task::JoinError>) {
    if let Err(error) = ended
        && error.is_panic()
    {
        tracing::error!(%error, "a job panicked; it runs again once its lease runs out");
    }
}

/// PostgreSQL intervals have microsecond precision and sqlx refuses to round: jittered
/// delays carry nanoseconds, so they are truncated here.
fn interval(delay: Duration) -> chrono::Duration {
    chrono::Duration::microseconds(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX))
}

/// Which run of which job a worker holds.
#[derive(Clone, Copy)]
struct Claim {
    id: i64,
    version: i32,
    token: uuid::Uuid,
}

enum Outcome {
    Succeeded,
    Retry(Duration, String),
    Deferred(DateTime<Utc>),
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let policy = RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 10,
        };
        let first = policy.delay_after(1);
        assert!(
            first >= Duration::from_secs(1) && first <= Duration::from_secs(2),
            "{first:?}"
        );
        let later = policy.delay_after(5);
        assert!(later >= Duration::from_secs(16), "{later:?}");
        assert!(policy.delay_after(40) <= Duration::from_secs(120));
    }
}
