//! `GET /devices[/:id]`, `DELETE /devices/:id` and `GET /devices/:id/access_person_accesses`
//! (remotelock-api.md §3.4). A deregistered lock is gone from all three.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::accesses::access_resource;
use crate::catalog::{Catalog, Lock};
use crate::directory::AccessibleType;
use crate::envelope::{ApiBase, Collection, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult};
use crate::listing::{ListQuery, ListSpec};
use crate::lock_state::{LockState, LockStates};
use crate::state::AppState;

const DEVICES: ListSpec = ListSpec {
    sortable: &["created_at", "name"],
    default_sort: "created_at",
};
const DEVICE_ACCESSES: ListSpec = ListSpec {
    sortable: &["created_at"],
    default_sort: "created_at",
};

pub async fn list(
    State(state): State<AppState>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let catalog = &state.catalog;
    let locks = &state.directory().locks;
    let all = catalog
        .locks
        .iter()
        .filter(|l| locks.get(l.id).is_some())
        .map(|l| lock_resource(catalog, locks, l, &base))
        .collect();
    query.apply(&DEVICES, all).map(Json)
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let locks = &state.directory().locks;
    let lock = find_lock(&state.catalog, locks, &id)?;
    Ok(Json(Single {
        data: lock_resource(&state.catalog, locks, lock, &base),
    }))
}

/// Deregisters the lock → 204 (documented); afterwards it is 404 everywhere.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if deregister(&state, resource_id(&id)?) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// The lock leaves the account, with the accesses granted on it; `false` for a lock the
/// account does not have.
pub fn deregister(state: &AppState, lock_id: Uuid) -> bool {
    let mut directory = state.directory();
    let removed = directory.locks.deregister(lock_id);
    if removed {
        directory.revoke_accesses_to_lock(lock_id);
    }
    removed
}

/// Who can open this lock: accesses granted on the lock itself or on its location.
pub async fn accesses(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let directory = state.directory();
    let lock = find_lock(&state.catalog, &directory.locks, &id)?;
    let all = directory
        .accesses()
        .filter(|a| match a.accessible.kind {
            AccessibleType::Lock => a.accessible.id == lock.id,
            AccessibleType::Location => a.accessible.id == lock.location_id,
        })
        .filter_map(|access| {
            let person = directory.person(access.person_id)?;
            Some(access_resource(
                &state.catalog,
                &directory,
                access,
                person.person_type(),
                &base,
            ))
        })
        .collect();
    query.apply(&DEVICE_ACCESSES, all).map(Json)
}

/// A lock of the account: seeded, and not deregistered since.
fn find_lock<'a>(catalog: &'a Catalog, states: &LockStates, id: &str) -> ApiResult<&'a Lock> {
    let id = resource_id(id)?;
    catalog
        .lock(id)
        .filter(|_| states.get(id).is_some())
        .ok_or_else(ApiError::not_found)
}

fn lock_resource(catalog: &Catalog, states: &LockStates, lock: &Lock, base: &ApiBase) -> Resource {
    let LockState {
        connected,
        connected_at,
        power_level,
        bolt,
        ..
    } = states.get(lock.id).expect("every seeded lock has a state");
    let attributes = json!({
        "name": lock.name,
        "serial_number": lock.serial_number,
        "state": bolt,
        "pending_state": null,
        "connected": connected,
        "alive": connected,
        "connected_at": timestamp(*connected_at),
        "heartbeat_interval": 1200,
        "wake_wifi": "user_action",
        "signal_quality": if *connected { 3 } else { 0 },
        "power_source": lock.power_source,
        "power_level": power_level,
        "muted": false,
        "auto_lock": true,
        "auto_lock_timeout": 20,
        "programming_code": "123456",
        "firmware_version": "2.4.1",
        "default_guest_start_time": null,
        "default_guest_end_time": null,
        "local_pins": [],
        "model_id": catalog.model.id,
        "model_number": catalog.model.number,
        "location_id": lock.location_id,
        "lock_action_schedule_id": null,
        "auto_lock_schedule_id": null,
        "created_at": timestamp(lock.created_at),
        "updated_at": timestamp(lock.created_at),
    });
    Resource::new(
        "lock",
        lock.id,
        attributes,
        base.url(format_args!("/devices/{}", lock.id)),
    )
    .link(
        "model",
        base.url(format_args!("/models/{}", catalog.model.id)),
    )
    .link(
        "location",
        base.url(format_args!("/locations/{}", lock.location_id)),
    )
}
