//! `lockbridge trace BOOKING_ID`: everything stored about one booking, in the order it
//! happened — the booking, each event with its id (written, published, handled by whom), the
//! PIN's states, every RemoteLock request made for it, the jobs, the emails and the failures.
//! Never a PIN or a patron's address: the events' payloads are not shown.

use std::io::Write;

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Serialize, sqlx::FromRow)]
struct Step {
    at: DateTime<Utc>,
    service: String,
    what: String,
}

pub(crate) async fn run(
    pool: &PgPool,
    booking_id: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM bookings WHERE booking_id = $1)")
            .bind(booking_id)
            .fetch_one(pool)
            .await?;
    if !known {
        bail!("no booking {booking_id} is stored");
    }
    let steps: Vec<Step> = sqlx::query_as(
        "WITH events AS (
             SELECT producer, event_id, routing_key, created_at, published_at, last_error,
                    payload->>'traceparent' AS traceparent
             FROM outbox WHERE payload->'data'->>'booking_id' = $1),
         steps AS (
         SELECT created_at AS at, 0 AS rank, 'booking-intake' AS service,
                format('booking stored: %s, %s to %s, source %s, revision %s, correlation id %s',
                       status, starts_at, ends_at, source, coalesce(revision::text, 'none'),
                       correlation_id) AS what
         FROM bookings WHERE booking_id = $1
         UNION ALL
         SELECT updated_at, 0, 'booking-intake', format('booking last changed: now %s', status)
         FROM bookings WHERE booking_id = $1 AND updated_at > created_at
         UNION ALL
         SELECT created_at, 2, producer, format('event %s %s written%s', routing_key, event_id,
                                                coalesce(', traceparent ' || traceparent, ''))
         FROM events
         UNION ALL
         SELECT published_at, 3, producer, format('event %s %s published', routing_key, event_id)
         FROM events WHERE published_at IS NOT NULL
         UNION ALL
         SELECT e.created_at, 3, e.producer,
                format('event %s %s not published yet: %s', e.routing_key, e.event_id, e.last_error)
         FROM events e WHERE e.published_at IS NULL AND e.last_error IS NOT NULL
         UNION ALL
         SELECT p.processed_at, 4, p.consumer, format('event %s %s handled', e.routing_key, p.event_id)
         FROM processed_events p JOIN events e USING (event_id)
         UNION ALL
         SELECT at, 1, 'lock-provisioner', format('PIN %s: %s', state, detail)
         FROM pin_history WHERE booking_id = $1
         UNION ALL
         SELECT at, 1, 'RemoteLock',
                format('%s %s: %s in %s ms', method, path,
                       coalesce(status::text || ' ' || outcome, outcome), duration_ms)
         FROM remotelock_calls WHERE booking_id = $1
         UNION ALL
         SELECT occurred_at, 7, 'door',
                format('lock %s reported %s%s%s (by %s)', lock_id, kind,
                       coalesce(' ' || status, ''), coalesce(': ' || status_info, ''),
                       received_via)
         FROM remotelock_events WHERE booking_id = $1
         UNION ALL
         SELECT updated_at, 6, queue,
                format('job %s %s after %s attempt(s)%s', job_key, state, attempts,
                       coalesce(': ' || last_error, ''))
         FROM jobs WHERE job_key = $1 OR job_key LIKE $1 || ':%'
         UNION ALL
         SELECT sent_at, 5, 'notifier', format('PIN email (PIN version %s) sent, message id %s',
                                            pin_version, message_id)
         FROM sent_emails WHERE booking_id = $1
         UNION ALL
         SELECT since, 1, 'failures', format('failure %s opened: %s', kind, reason)
         FROM failures WHERE booking_id = $1
         UNION ALL
         SELECT resolved_at, 1, 'failures', format('failure %s resolved', kind)
         FROM failures WHERE booking_id = $1 AND resolved_at IS NOT NULL)
         SELECT at, service, what FROM steps
         -- Steps of one transaction share its time: in the order they cause each other.
         ORDER BY at, rank",
    )
    .bind(booking_id)
    .fetch_all(pool)
    .await?;
    crate::report(out, json, &steps, &["AT", "SERVICE", "WHAT"], |step| {
        vec![
            step.at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
            step.service.clone(),
            step.what.clone(),
        ]
    })
}
