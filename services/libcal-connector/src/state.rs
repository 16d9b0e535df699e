//! The connector's own tables (migrations/README.md): what LibCal said of each row, the
//! revision it got, and how far booking-intake has it; and the catalogue as last sent.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

/// A row as the connector knows it: read before a poll, written with what the poll decided.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Row {
    pub booking_id: String,
    pub book_id: String,
    pub location_id: i64,
    pub starts_at: DateTime<Utc>,
    pub body: Value,
    pub cancelled: bool,
    pub revision: i64,
    pub missing_polls: i32,
}

/// A revision booking-intake does not have yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unsent {
    pub booking_id: String,
    pub body: Value,
    pub revision: i64,
    pub attempts: i32,
}

/// Every row known for `lids`, by booking id.
pub async fn known(pool: &PgPool, lids: &[i64]) -> Result<HashMap<String, Row>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT booking_id, book_id, location_id, starts_at, body, cancelled, revision,
                missing_polls
         FROM libcal_bookings WHERE location_id = ANY($1)",
    )
    .bind(lids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|k| (k.booking_id.clone(), k))
        .collect())
}

/// Stores what a poll decided, all rows in one statement. A new revision is owed to intake
/// at once, whatever was refused or deferred before.
pub async fn write(tx: &mut Transaction<'_, Postgres>, writes: &[Row]) -> Result<(), sqlx::Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Row) -> String| writes.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO libcal_bookings AS b (booking_id, book_id, location_id, starts_at, body,
                                           cancelled, revision, missing_polls)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::timestamptz[],
                              $5::jsonb[], $6::bool[], $7::int8[], $8::int4[])
         ON CONFLICT (booking_id) DO UPDATE SET
             book_id = EXCLUDED.book_id, location_id = EXCLUDED.location_id,
             starts_at = EXCLUDED.starts_at, body = EXCLUDED.body,
             cancelled = EXCLUDED.cancelled, missing_polls = EXCLUDED.missing_polls,
             refused = CASE WHEN EXCLUDED.revision > b.revision THEN NULL ELSE b.refused END,
             attempts = CASE WHEN EXCLUDED.revision > b.revision THEN 0 ELSE b.attempts END,
             next_attempt_at = CASE WHEN EXCLUDED.revision > b.revision THEN now()
                                    ELSE b.next_attempt_at END,
             revision = greatest(b.revision, EXCLUDED.revision)",
    )
    .bind(column(|w| w.booking_id.clone()))
    .bind(column(|w| w.book_id.clone()))
    .bind(writes.iter().map(|w| w.location_id).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.starts_at).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.body.clone()).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.cancelled).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.revision).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.missing_polls).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The revisions intake is owed and may be sent now, soonest booking first.
pub async fn unsent(pool: &PgPool, limit: i64) -> Result<Vec<Unsent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT booking_id, body, revision, attempts FROM libcal_bookings
         WHERE sent_revision < revision AND next_attempt_at <= now()
         ORDER BY starts_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// When the next owed revision may be sent (the sender sleeps until then).
pub async fn next_attempt(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(next_attempt_at) FROM libcal_bookings WHERE sent_revision < revision",
    )
    .fetch_one(pool)
    .await
}

/// Intake has `revision` (or a later one is already owed: that stays owed).
pub async fn sent(
    db: impl PgExecutor<'_>,
    booking_id: &str,
    revision: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE libcal_bookings SET sent_revision = greatest(sent_revision, $2), attempts = 0,
                refused = NULL
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(revision)
    .execute(db)
    .await?;
    Ok(())
}

/// Intake refused `revision` for good: it is not sent again, and the reason is kept.
pub async fn refused(
    pool: &PgPool,
    booking_id: &str,
    revision: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE libcal_bookings SET sent_revision = greatest(sent_revision, $2), refused = $3,
                attempts = 0
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(revision)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sending failed for a reason that may pass: tried again after `delay`.
pub async fn defer(pool: &PgPool, booking_id: &str, delay: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE libcal_bookings SET attempts = attempts + 1,
                next_attempt_at = now() + make_interval(secs => $2)
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(delay.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Intake holds a revision at least `theirs` for the row (the connector's state was restored
/// from an older backup, say): what LibCal says now goes out as the next one above it.
pub async fn overtake(pool: &PgPool, booking_id: &str, theirs: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE libcal_bookings SET revision = greatest(revision, $2 + 1), next_attempt_at = now()
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(theirs)
    .execute(pool)
    .await?;
    Ok(())
}

/// Rows of bookings that ended long ago and that intake has: LibCal no longer returns them.
pub async fn forget_before(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM libcal_bookings WHERE starts_at < $1 AND sent_revision = revision",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The catalogue entries last sent, by intake path.
pub async fn catalogue(pool: &PgPool) -> Result<HashMap<String, Value>, sqlx::Error> {
    let rows: Vec<(String, Value)> = sqlx::query_as("SELECT path, body FROM libcal_catalogue")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

pub async fn catalogue_sent(pool: &PgPool, path: &str, body: &Value) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO libcal_catalogue (path, body) VALUES ($1, $2)
         ON CONFLICT (path) DO UPDATE SET body = EXCLUDED.body, sent_at = now()",
    )
    .bind(path)
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}
