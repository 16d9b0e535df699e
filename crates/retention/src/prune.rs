//! The prune: what only served the pipeline goes once nothing can need it again. Each rule
//! deletes a batch, oldest first, per statement, until fewer than a batch were due.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{
    counts::{Action, Counts},
    pass::BATCH,
};

/// Where a rule's cutoff comes from.
#[derive(Clone, Copy)]
enum Since {
    /// `retention.prune_after` ago.
    Used,
    /// Now: the row says itself when it stops being good.
    Expired,
}

struct Rule {
    table: &'static str,
    since: Since,
    /// Deletes a batch of at most `$2` rows older than `$1`.
    delete: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        table: "processed_events",
        since: Since::Used,
        // A redelivery (or a dead letter replayed) older than this is handled again.
        delete: "DELETE FROM processed_events WHERE (consumer, event_id) IN (
                     SELECT consumer, event_id FROM processed_events WHERE processed_at < $1
                     ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    },
    Rule {
        table: "outbox",
        since: Since::Used,
        // Unpublished events stay whatever their age: they are still owed to the broker.
        delete: "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox WHERE published_at < $1
                     ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    },
    Rule {
        table: "jobs",
        since: Since::Used,
        // A failed job staff may still retry (an open failure names it, or names its whole
        // queue) stays; queued and running ones are work still to do.
        delete: "DELETE FROM jobs WHERE id IN (
                     SELECT j.id FROM jobs j
                     WHERE j.state IN ('succeeded', 'failed') AND j.updated_at < $1
                       AND NOT (j.state = 'failed' AND EXISTS (
                           SELECT 1 FROM failures f
                           WHERE f.resolved_at IS NULL AND f.job_queue = j.queue
                             AND (f.job_key IS NULL OR f.job_key = j.job_key)))
                     ORDER BY j.updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    },
    Rule {
        table: "remotelock_events",
        since: Since::Used,
        // A lock's events about no booking (connectivity, battery, a wrong PIN): their use was
        // the alert they raised. A booking's stay as its activity, for reports: they hold
        // nothing personal.
        delete: "DELETE FROM remotelock_events WHERE event_id IN (
                     SELECT event_id FROM remotelock_events
                     WHERE booking_id IS NULL AND applied_at < $1
                     ORDER BY applied_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    },
    Rule {
        table: "oauth_states",
        since: Since::Expired,
        delete: "DELETE FROM oauth_states WHERE state IN (
                     SELECT state FROM oauth_states WHERE expires_at <= $1
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    },
    Rule {
        table: "staff_sessions",
        since: Since::Expired,
        delete: "DELETE FROM staff_sessions WHERE token_sha256 IN (
                     SELECT token_sha256 FROM staff_sessions WHERE expires_at <= $1
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    },
];

/// Prunes what was last used before `used_before` and what expired by `now`. Each statement
/// is its own transaction (or, in a dry run, part of the pass's one).
pub(crate) async fn prune(
    conn: &mut PgConnection,
    used_before: DateTime<Utc>,
    now: DateTime<Utc>,
    counts: &mut Counts,
) -> Result<(), sqlx::Error> {
    for rule in RULES {
        let cutoff = match rule.since {
            Since::Used => used_before,
            Since::Expired => now,
        };
        loop {
            let deleted = sqlx::query(rule.delete)
                .bind(cutoff)
                .bind(i64::try_from(BATCH).expect("a small batch"))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            counts.add(rule.table, Action::Deleted, deleted);
            if deleted < BATCH {
                break;
            }
        }
    }
    Ok(())
}
