//! The PostgreSQL pool and the embedded migrations.

use std::{collections::HashSet, time::Duration};

use secrecy::ExposeSecret;
use sqlx::{
    Connection, PgConnection, PgPool, Postgres, Transaction,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use uuid::Uuid;

use crate::configuration::DatabaseSettings;

/// Every migration in `migrations/`, compiled in: no database is needed to build.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot connect to the database named by database.url")]
    Connect(#[source] sqlx::Error),
    #[error("cannot bring the database schema up to date")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Connects (failing fast when the database is unreachable) and applies pending migrations.
/// Migrations take an advisory lock, so services starting together do not race.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> Result<PgPool, DatabaseError> {
    let pool = connect(settings).await?;
    MIGRATOR.run(&pool).await.map_err(DatabaseError::Migrate)?;
    Ok(pool)
}

/// Connects, failing fast when the database is unreachable; the schema is left as it is.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DatabaseError> {
    let options: PgConnectOptions = settings
        .url
        .expose_secret()
        .parse()
        .map_err(DatabaseError::Connect)?;
    // One direct connection first: a pool only reports "timed out", hiding why (refused,
    // unknown database, bad password).
    PgConnection::connect_with(&options)
        .await
        .map_err(DatabaseError::Connect)?
        .close()
        .await
        .ok();
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(DatabaseError::Connect)
}

/// Claims an event for a consumer by inserting it: `false` means it was handled before and
/// the delivery is a redelivery to acknowledge without doing anything.
pub async fn claim_event(
    tx: &mut Transaction<'_, Postgres>,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(claim_events(tx, consumer, &[event_id])
        .await?
        .contains(&event_id))
}

/// Claims events `$2` for consumer `$1`, returning those not claimed before.
pub(crate) const CLAIM_EVENTS: &str =
    "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[])
     ON CONFLICT DO NOTHING RETURNING event_id";

/// Claims several events in one statement (a consumer's batch); returns those not seen before.
pub async fn claim_events(
    tx: &mut Transaction<'_, Postgres>,
    consumer: &str,
    event_ids: &[Uuid],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let claimed: Vec<Uuid> = sqlx::query_scalar(CLAIM_EVENTS)
        .bind(consumer)
        .bind(event_ids)
        .fetch_all(&mut **tx)
        .await?;
    Ok(claimed.into_iter().collect())
}

/// Whether the same statement with the same data will fail again: integrity constraints
/// (SQLSTATE class 23), data exceptions (22) and values that cannot be encoded or decoded. A
/// lost connection, a timeout or a restarting server may pass.
pub fn will_not_pass(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    }
}

/// A session-level advisory lock, held by one pooled connection for as long as the work it
/// guards: one pass of a periodic job (retention, drift) at a time across every process.
pub struct SessionLock {
    conn: PoolConnection<Postgres>,
    key: i64,
}

impl SessionLock {
    /// The lock `key`, or `None` while another session holds it.
    pub async fn try_take(pool: &PgPool, key: i64) -> Result<Option<Self>, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(ours.then_some(Self { conn, key }))
    }

    /// The connection that holds it, for work that must run in that session.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Lets go of the lock. After work that failed on the connection (`clean` false: it may be
    /// mid-transaction or broken), or when the unlock fails, the connection is closed rather
    /// than given back, which lets go of the lock too.
    pub async fn release(mut self, clean: bool) {
        let unlocked = clean
            && sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *self.conn)
                .await
                .is_ok();
        if !unlocked {
            let _ = self.conn.detach().close().await;
        }
    }
}
