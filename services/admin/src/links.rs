//! Space↔lock links (design §1 step 2). The schema is the judge: one lock per space and one
//! space per lock (primary key, unique), only spaces bookable as a whole (composite foreign
//! key), only under a stored authorization (foreign key); its refusals are mapped by name.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, post},
};
use chrono::{DateTime, Utc};
use lockbridge_domain::{LockId, SpaceId, SpaceKind};
use lockbridge_http::{
    input::{Fields, JsonObject, path_id},
    problem::Problem,
};
use lockbridge_remotelock::RemoteLockError;
use serde::Serialize;
use sqlx::PgPool;

use crate::{
    authorization::constraint,
    locks::remotelock_problem,
    settings::{self, Scope},
    startup::AppState,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/links", post(link))
        .route("/api/v1/links/{space_id}", delete(unlink))
}

#[derive(Serialize)]
pub(crate) struct Link {
    pub space_id: SpaceId,
    pub space_name: String,
    pub lock_id: LockId,
    pub lock_name: String,
    linked_at: DateTime<Utc>,
    /// Existing bookings of the space that will now get a PIN.
    pub upcoming_bookings: u64,
}

async fn link(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Link>), Problem> {
    let mut fields = Fields::new(&body);
    let space_id = fields.parsed("space_id", |s| SpaceId::parse(s));
    let lock_id = fields.parsed("lock_id", |s| LockId::parse(s));
    fields.finish()?;
    let link = create(
        &state,
        space_id.expect("checked"),
        lock_id.expect("checked"),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Links the space to the lock, if the RemoteLock account has it and the schema agrees.
pub(crate) async fn create(
    state: &AppState,
    space_id: SpaceId,
    lock_id: LockId,
) -> Result<Link, Problem> {
    // The lock must be the account's, and one that takes PINs; its name is kept for display.
    let device = state
        .staff_calls()
        .device(&lock_id)
        .await
        .map_err(|error| match error {
            RemoteLockError::NotFound { .. } => Problem::invalid_field(
                "lock_id",
                "the RemoteLock account has no device with this id (GET /api/v1/locks lists them)",
            ),
            error => remotelock_problem(error),
        })?;
    if !device.device_type.is_lock() {
        return Err(Problem::invalid_field(
            "lock_id",
            format!(
                "is a RemoteLock {}, not a lock that takes guest PINs",
                device.device_type.as_str()
            ),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query_as::<_, (String, DateTime<Utc>)>(
        "INSERT INTO lock_links (space_id, lock_id, lock_name) VALUES ($1, $2, $3)
         RETURNING (SELECT name FROM spaces WHERE space_id = $1), linked_at",
    )
    .bind(&space_id)
    .bind(&lock_id)
    .bind(&device.name)
    .fetch_one(&mut *tx)
    .await;
    let (space_name, linked_at) = match inserted {
        Ok(row) => row,
        Err(error) => {
            drop(tx);
            return Err(refusal(&state.pool, error, &space_id, &lock_id).await);
        }
    };
    // Bookings stored before the link get their PIN now.
    let upcoming_bookings =
        settings::schedule_upcoming(&mut tx, &Scope::Space(space_id.clone())).await?;
    tx.commit().await?;
    tracing::info!(%space_id, %lock_id, upcoming_bookings, "space linked");
    Ok(Link {
        space_id,
        space_name,
        lock_id,
        lock_name: device.name,
        linked_at,
        upcoming_bookings,
    })
}

/// Explains why the schema refused a link, naming what is in the way.
async fn refusal(
    pool: &PgPool,
    error: sqlx::Error,
    space_id: &SpaceId,
    lock_id: &LockId,
) -> Problem {
    let explained = match constraint(&error) {
        Some("lock_links_pkey") => space_taken(pool, space_id).await,
        Some("lock_links_lock_id_key") => lock_taken(pool, lock_id).await,
        Some("lock_links_space_id_space_kind_fkey") => space_unlinkable(pool, space_id).await,
        // The authorization was removed since RemoteLock answered.
        Some("lock_links_authorization_id_fkey") => Ok(Problem::conflict(
            "authorization",
            "lockbridge is not authorized with RemoteLock: authorize first \
             (POST /api/v1/remotelock/authorization)",
        )),
        _ => Err(error),
    };
    explained.unwrap_or_else(Problem::from)
}

async fn space_taken(pool: &PgPool, space_id: &SpaceId) -> Result<Problem, sqlx::Error> {
    let holder: Option<(LockId, String)> =
        sqlx::query_as("SELECT lock_id, lock_name FROM lock_links WHERE space_id = $1")
            .bind(space_id)
            .fetch_optional(pool)
            .await?;
    let holder = holder.map_or_else(
        || "a lock".to_owned(),
        |(lock_id, lock_name)| format!("lock {lock_id} ({lock_name})"),
    );
    Ok(Problem::conflict(
        "space_id",
        format!(
            "space {space_id} is already linked to {holder}: unlink it first \
             (DELETE /api/v1/links/{space_id})"
        ),
    ))
}

async fn lock_taken(pool: &PgPool, lock_id: &LockId) -> Result<Problem, sqlx::Error> {
    let holder: Option<SpaceId> =
        sqlx::query_scalar("SELECT space_id FROM lock_links WHERE lock_id = $1")
            .bind(lock_id)
            .fetch_optional(pool)
            .await?;
    let holder = holder.map_or_else(|| "another space".to_owned(), |id| format!("space {id}"));
    Ok(Problem::conflict(
        "lock_id",
        format!("lock {lock_id} is already linked to {holder}: unlink that space first"),
    ))
}

async fn space_unlinkable(pool: &PgPool, space_id: &SpaceId) -> Result<Problem, sqlx::Error> {
    let kind: Option<SpaceKind> = sqlx::query_scalar("SELECT kind FROM spaces WHERE space_id = $1")
        .bind(space_id)
        .fetch_optional(pool)
        .await?;
    let detail = match kind {
        None => "no such space: booking-intake creates spaces (PUT /v1/spaces/{space_id})",
        Some(SpaceKind::Container) => {
            "is a container: only spaces bookable as a whole can have a lock"
        }
        Some(SpaceKind::Seat) => "is a seat: only spaces bookable as a whole can have a lock",
        // Changed kind back since the refusal.
        Some(SpaceKind::BookableAsWhole) => "changed while it was being linked: try again",
    };
    Ok(Problem::invalid_field("space_id", detail))
}

async fn unlink(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, Problem> {
    let space_id = path_id("space_id", raw_id, SpaceId::parse)?;
    remove(&state.pool, &space_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Future bookings of the space get no PIN; guests already in RemoteLock are left alone.
pub(crate) async fn remove(pool: &PgPool, space_id: &SpaceId) -> Result<(), Problem> {
    let deleted = sqlx::query("DELETE FROM lock_links WHERE space_id = $1")
        .bind(space_id)
        .execute(pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(Problem::not_found(format!(
            "space {space_id} is not linked to a lock"
        )));
    }
    tracing::info!(%space_id, "space unlinked");
    Ok(())
}
