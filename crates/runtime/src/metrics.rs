//! Prometheus metrics on every service's `GET /metrics` (no token, like the health endpoints).
//!
//! Counters and histograms are recorded where the work happens, through the `metrics` facade;
//! the backlog gauges (jobs by state and the age of the oldest due one, outbox rows unsent and
//! the oldest's age) are read from PostgreSQL when Prometheus scrapes, so they are true even
//! for work no process is touching. Names follow Prometheus conventions: the `lockbridge_`
//! prefix, base units (`_seconds`), `_total` for counters; labels are few-valued (a queue, an
//! outcome), never a booking id.

use std::sync::OnceLock;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

/// Buckets for latencies, from a fast RemoteLock answer to a booking that waited out a
/// rate-limit window.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The process's recorder: installed once, shared by every service running in the process
/// (one in production; the tests run a whole system in one).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Installs the recorder, so that what is recorded before the first scrape is kept.
pub fn install() {
    handle();
}

/// What a service's backlog gauges cover: its own job queues and outbox producers, and for
/// the one service that reports them (the provisioner, which owns the PINs) the open failures
/// and the PINs due soon that are not issued.
#[derive(Clone, Default)]
pub struct Backlog {
    pub job_queues: Vec<&'static str>,
    pub producers: Vec<&'static str>,
    pub doors: bool,
}

/// How soon a booking's start must be for its missing PIN to count as due.
const DUE_WITHIN: &str = "1 hour";

#[derive(Clone)]
struct Scrape {
    pool: PgPool,
    backlog: Backlog,
}

pub fn router<S>(pool: PgPool, backlog: Backlog) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    install();
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { pool, backlog })
}

async fn scrape(State(scrape): State<Scrape>) -> impl IntoResponse {
    // A database that does not answer leaves the gauges as last read; the counters still go.
    if let Err(error) = read_backlog(&scrape.pool, &scrape.backlog).await {
        tracing::warn!(error = %crate::telemetry::error_chain(&error), "cannot read the backlog for /metrics");
        metrics::counter!("lockbridge_metrics_backlog_read_failures_total").increment(1);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
}

/// The job states a gauge is kept for, so a state that empties reads 0 rather than vanishing.
const JOB_STATES: [&str; 4] = ["pending", "running", "retrying", "failed"];

async fn read_backlog(pool: &PgPool, backlog: &Backlog) -> Result<(), sqlx::Error> {
    if !backlog.job_queues.is_empty() {
        // `pending`: due now; `retrying`: waiting for its next attempt (a backoff after a
        // failure, or a RemoteLock budget that was spent).
        let rows: Vec<(String, String, i64, Option<f64>)> = sqlx::query_as(
            "SELECT q.name, s.state, count(j.id),
                    extract(epoch FROM now() - min(j.run_at))::float8
             FROM unnest($1::text[]) AS q (name)
             CROSS JOIN unnest($2::text[]) AS s (state)
             LEFT JOIN jobs j ON j.queue = q.name AND s.state = CASE
                 WHEN j.state = 'queued' AND j.run_at <= now() THEN 'pending'
                 WHEN j.state = 'queued' THEN 'retrying'
                 ELSE j.state::text END
             GROUP BY q.name, s.state",
        )
        .bind(&backlog.job_queues)
        .bind(JOB_STATES.as_slice())
        .fetch_all(pool)
        .await?;
        for (queue, state, count, oldest) in rows {
            metrics::gauge!("lockbridge_jobs", "queue" => queue.clone(), "state" => state.clone())
                .set(count as f64);
            if state == "pending" {
                metrics::gauge!("lockbridge_jobs_oldest_pending_age_seconds", "queue" => queue)
                    .set(oldest.unwrap_or(0.0).max(0.0));
            }
        }
    }
    if !backlog.producers.is_empty() {
        let rows: Vec<(String, i64, Option<f64>)> = sqlx::query_as(
            "SELECT p.name, count(o.id), extract(epoch FROM now() - min(o.created_at))::float8
             FROM unnest($1::text[]) AS p (name)
             LEFT JOIN outbox o ON o.producer = p.name AND o.published_at IS NULL
             GROUP BY p.name",
        )
        .bind(&backlog.producers)
        .fetch_all(pool)
        .await?;
        for (producer, unsent, oldest) in rows {
            metrics::gauge!("lockbridge_outbox_unsent", "producer" => producer.clone())
                .set(unsent as f64);
            metrics::gauge!("lockbridge_outbox_oldest_unsent_age_seconds", "producer" => producer)
                .set(oldest.unwrap_or(0.0).max(0.0));
        }
    }
    if backlog.doors {
        read_doors(pool).await?;
    }
    Ok(())
}

const FAILURE_KINDS: [&str; 7] = [
    "pin_not_issued",
    "pin_not_revoked",
    "email_not_sent",
    "authorization",
    "pin_not_synced",
    "lock_offline",
    "lock_battery_low",
];

async fn read_doors(pool: &PgPool) -> Result<(), sqlx::Error> {
    let open: Vec<(String, i64)> = sqlx::query_as(
        "SELECT k.kind, count(f.id) FROM unnest($1::text[]) AS k (kind)
         LEFT JOIN failures f ON f.kind::text = k.kind AND f.resolved_at IS NULL
         GROUP BY k.kind",
    )
    .bind(FAILURE_KINDS.as_slice())
    .fetch_all(pool)
    .await?;
    for (kind, count) in open {
        metrics::gauge!("lockbridge_failures_open", "kind" => kind).set(count as f64);
    }
    // Confirmed bookings of linked spaces whose PIN must work within the hour (or already
    // does) and has not been issued: each one a patron about to stand at a locked door.
    let due: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM bookings b
         JOIN lock_links k ON k.space_id = b.space_id
         LEFT JOIN booking_pins p ON p.booking_id = b.booking_id
         WHERE b.status = 'confirmed' AND b.ends_at > now()
           AND b.starts_at < now() + interval '{DUE_WITHIN}'
           AND p.state IS DISTINCT FROM 'issued'"
    ))
    .fetch_one(pool)
    .await?;
    metrics::gauge!("lockbridge_pins_due_not_issued").set(due as f64);
    Ok(())
}
