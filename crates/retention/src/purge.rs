//! The purge: a booking ended `retention.days` ago loses its patron everywhere it is kept. The
//! booking row stays with its times, space, status and revision (what reports count), and so do
//! its PIN record, history, emails and failures, each without what named the patron or opened
//! the door. Rows that are nothing but the patron's data (the events and email jobs carrying
//! the PIN, the PIN's viewings, the RemoteLock requests for its guest) go.

use chrono::{DateTime, Utc};
use lockbridge_work::provisioning;
use sqlx::{Connection, PgConnection};

use crate::{
    counts::{Action, Counts},
    pass::BATCH,
};

/// What a purged name or address reads: every reader shows it as it is. The same text as
/// `retention_scrub` writes (migrations/20261203000002_retention.sql).
pub const PURGED: &str = "(purged)";

/// The booking's lines kept for staff that may quote its patron or guest (a RemoteLock or SMTP
/// error kept as a reason), by table and column: they stay, with the quotes replaced.
const QUOTING: [(&str, &str); 2] = [("pin_history", "detail"), ("failures", "reason")];

/// Purges the bookings that ended before `ended_before`, a batch per transaction, until none is
/// left. A booking with a job running for it (a PIN email being sent, a provisioning run) waits
/// for the next pass: the run holds the patron and would write them back.
pub(crate) async fn purge(
    conn: &mut PgConnection,
    ended_before: DateTime<Utc>,
    counts: &mut Counts,
) -> Result<(), sqlx::Error> {
    loop {
        let mut tx = conn.begin().await?;
        let due = batch(&mut tx, ended_before, counts).await?;
        tx.commit().await?;
        if due < BATCH {
            return Ok(());
        }
    }
}

/// One batch: the bookings due, and everything about them, in the caller's transaction.
/// Answers how many bookings were due.
async fn batch(
    tx: &mut PgConnection,
    ended_before: DateTime<Utc>,
    counts: &mut Counts,
) -> Result<u64, sqlx::Error> {
    // The batch and what to look for in text that may quote its patrons, kept in the database:
    // personal data never passes through this process.
    sqlx::query(
        "CREATE TEMPORARY TABLE retention_purging (booking_id TEXT PRIMARY KEY, terms TEXT[])",
    )
    .execute(&mut *tx)
    .await?;
    let due = sqlx::query(
        "WITH due AS (
             SELECT b.booking_id, b.patron_name, b.patron_email FROM bookings b
             WHERE b.purged_at IS NULL AND b.ends_at < $1
               AND NOT EXISTS (
                   SELECT 1 FROM jobs j
                   WHERE j.state = 'running'
                     AND ((j.queue = $3 AND j.job_key = b.booking_id)
                          OR (j.payload ? 'data' AND j.payload -> 'data' ->> 'booking_id' = b.booking_id)))
             ORDER BY b.ends_at LIMIT $2
             FOR UPDATE OF b SKIP LOCKED)
         INSERT INTO retention_purging (booking_id, terms)
         SELECT d.booking_id,
                ARRAY[d.patron_name, d.patron_email, p.guest_name, p.patron_name, p.patron_email]
         FROM due d LEFT JOIN booking_pins p USING (booking_id)",
    )
    .bind(ended_before)
    .bind(i64::try_from(BATCH).expect("a small batch"))
    .bind(provisioning::QUEUE)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let steps = [
        (
            "bookings",
            Action::Purged,
            // Times, space, status, source and revision stay: they are what reports count.
            sqlx::query(
                "UPDATE bookings b SET patron_name = $1, patron_email = $1, purged_at = now()
                 FROM retention_purging p WHERE b.booking_id = p.booking_id",
            )
            .bind(PURGED),
        ),
        (
            "booking_pins",
            Action::Purged,
            // The state, version, lock, guest id and window stay for the booking's story.
            // The PIN goes sealed and in clear (an older release's), with its digest: a digest
            // of a 6-digit PIN is as good as the PIN to whoever holds the key.
            sqlx::query(
                "UPDATE booking_pins b SET
                     pin = NULL, pin_sealed = NULL, pin_digest = NULL,
                     guest_name = NULL, patron_name = NULL, patron_email = NULL,
                     last_error = retention_scrub(b.last_error, p.terms)
                 FROM retention_purging p
                 WHERE b.booking_id = p.booking_id
                   AND (b.pin IS NOT NULL OR b.pin_sealed IS NOT NULL
                        OR b.guest_name IS NOT NULL OR b.patron_name IS NOT NULL
                        OR b.patron_email IS NOT NULL
                        OR b.last_error IS DISTINCT FROM retention_scrub(b.last_error, p.terms))",
            ),
        ),
        (
            "sent_emails",
            Action::Purged,
            // One row per email stays: how many went out, when, for which PIN version.
            sqlx::query(
                "UPDATE sent_emails s SET recipient = $1
                 FROM retention_purging p
                 WHERE s.booking_id = p.booking_id AND s.recipient <> $1",
            )
            .bind(PURGED),
        ),
        (
            "jobs",
            Action::Purged,
            sqlx::query(
                "UPDATE jobs j SET last_error = retention_scrub(j.last_error, p.terms)
                 FROM retention_purging p
                 WHERE j.queue = $1 AND j.job_key = p.booking_id
                   AND j.last_error <> retention_scrub(j.last_error, p.terms)",
            )
            .bind(provisioning::QUEUE),
        ),
        (
            "jobs",
            Action::Deleted,
            // A job carrying the booking's event (a PIN email, with the PIN and the address)
            // has nothing left to do for a booking over this long: sent, or moot.
            sqlx::query(
                "DELETE FROM jobs j USING retention_purging p
                 WHERE j.payload ? 'data' AND j.payload -> 'data' ->> 'booking_id' = p.booking_id
                   AND j.state <> 'running'",
            ),
        ),
        (
            "outbox",
            Action::Deleted,
            // Its events carry the patron (and the PIN): published long ago, or moot now.
            sqlx::query(
                "DELETE FROM outbox o USING retention_purging p
                 WHERE o.payload -> 'data' ->> 'booking_id' = p.booking_id",
            ),
        ),
        (
            "libcal_bookings",
            Action::Purged,
            // The connector's copy of the booking as LibCal described it.
            sqlx::query(
                "UPDATE libcal_bookings l
                 SET body = jsonb_set(l.body, '{patron}', jsonb_build_object('name', $1::text, 'email', $1::text)),
                     refused = retention_scrub(l.refused, p.terms)
                 FROM retention_purging p
                 WHERE l.booking_id = p.booking_id
                   AND (l.body -> 'patron' IS DISTINCT FROM jsonb_build_object('name', $1::text, 'email', $1::text)
                        OR l.refused IS DISTINCT FROM retention_scrub(l.refused, p.terms))",
            )
            .bind(PURGED),
        ),
        (
            "staff_pin_viewings",
            Action::Deleted,
            // Who looked at a PIN that no longer exists.
            sqlx::query(
                "DELETE FROM staff_pin_viewings v USING retention_purging p
                 WHERE v.booking_id = p.booking_id",
            ),
        ),
        (
            "remotelock_calls",
            Action::Deleted,
            sqlx::query(
                "DELETE FROM remotelock_calls c USING retention_purging p
                 WHERE c.booking_id = p.booking_id",
            ),
        ),
    ];
    for (table, action, statement) in steps {
        let rows = statement.execute(&mut *tx).await?.rows_affected();
        counts.add(table, action, rows);
    }
    for (table, column) in QUOTING {
        let scrub = format!(
            "UPDATE {table} t SET {column} = retention_scrub(t.{column}, p.terms)
             FROM retention_purging p
             WHERE t.booking_id = p.booking_id AND t.{column} <> retention_scrub(t.{column}, p.terms)"
        );
        let rows = sqlx::query(&scrub).execute(&mut *tx).await?.rows_affected();
        counts.add(table, Action::Purged, rows);
    }
    sqlx::query("DROP TABLE retention_purging")
        .execute(&mut *tx)
        .await?;
    Ok(due)
}
