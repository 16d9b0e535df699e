//! The RemoteLock account's locks, with battery, connectivity and the space each is linked to.

use std::collections::HashMap;

use axum::{Json, Router, extract::State, routing::get};
use chrono::{DateTime, Utc};
use lockbridge_domain::{LockId, SpaceId, TimeZone};
use lockbridge_http::problem::Problem;
use lockbridge_remotelock::{DeviceType, Location, RemoteLockError, RemoteLockLocationId};
use lockbridge_runtime::telemetry::error_chain;
use serde::Serialize;

use crate::startup::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/locks", get(list))
}

/// How a failed RemoteLock call looks to the API's client.
pub(crate) fn remotelock_problem(error: RemoteLockError) -> Problem {
    let detail = error_chain(&error);
    match error {
        RemoteLockError::NotAuthorized(_) => Problem::conflict(
            "authorization",
            format!(
                "{detail}; authorize first: POST /api/v1/remotelock/authorization and open \
                 the authorize_url"
            ),
        ),
        error if error.is_transient() => Problem::unavailable(format!("{detail}; retry later")),
        _ => {
            tracing::error!(error = %detail, "RemoteLock call failed");
            Problem::bad_gateway(detail)
        }
    }
}

#[derive(Serialize)]
struct Locks {
    locks: Vec<LockView>,
}

#[derive(Serialize)]
struct LockView {
    lock_id: LockId,
    name: String,
    #[serde(rename = "type")]
    device_type: DeviceType,
    location: Option<LocationView>,
    /// Battery percentage.
    power_level: Option<u8>,
    /// Connected at this moment.
    connected: Option<bool>,
    /// Heartbeating regularly.
    alive: Option<bool>,
    connected_at: Option<DateTime<Utc>>,
    linked_space: Option<LinkedSpace>,
}

#[derive(Clone, Serialize)]
struct LocationView {
    location_id: RemoteLockLocationId,
    name: String,
    time_zone: TimeZone,
}

impl From<Location> for LocationView {
    fn from(location: Location) -> Self {
        Self {
            location_id: location.id,
            name: location.name,
            time_zone: location.time_zone,
        }
    }
}

#[derive(Serialize, sqlx::FromRow)]
struct LinkedSpace {
    space_id: SpaceId,
    name: String,
}

async fn list(State(state): State<AppState>) -> Result<Json<Locks>, Problem> {
    let remotelock = state.staff_calls();
    let (devices, locations) =
        tokio::try_join!(remotelock.locks(), remotelock.locations()).map_err(remotelock_problem)?;
    let locations: HashMap<RemoteLockLocationId, LocationView> = locations
        .into_iter()
        .map(|location| (location.id.clone(), location.into()))
        .collect();
    let mut links: HashMap<LockId, LinkedSpace> = sqlx::query_as::<_, (LockId, SpaceId, String)>(
        "SELECT l.lock_id, l.space_id, s.name FROM lock_links l JOIN spaces s USING (space_id)",
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|(lock_id, space_id, name)| (lock_id, LinkedSpace { space_id, name }))
    .collect();
    let locks = devices
        .into_iter()
        .map(|device| LockView {
            linked_space: links.remove(&device.id),
            location: device
                .location_id
                .as_ref()
                .and_then(|id| locations.get(id))
                .cloned(),
            lock_id: device.id,
            name: device.name,
            device_type: device.device_type,
            power_level: device.power_level,
            connected: device.connected,
            alive: device.alive,
            connected_at: device.connected_at,
        })
        .collect();
    Ok(Json(Locks { locks }))
}
