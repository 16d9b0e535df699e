//! `GET /devices[/:id]` and `GET /devices/:id/access_person_accesses` (remotelock-api.md §3.4).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use crate::accesses::access_resource;
use crate::catalog::{Catalog, Lock};
use crate::directory::AccessibleType;
use crate::envelope::{ApiBase, Collection, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult};
use crate::listing::{ListQuery, ListSpec};
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
    let all = catalog
        .locks
        .iter()
        .map(|l| lock_resource(catalog, l, &base))
        .collect();
    query.apply(&DEVICES, all).map(Json)
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let lock = find_lock(&state.catalog, &id)?;
    Ok(Json(Single {
        data: lock_resource(&state.catalog, lock, &base),
    }))
}

/// Who can open this lock: accesses granted on the lock itself or on its location.
pub async fn accesses(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let lock = find_lock(&state.catalog, &id)?;
    let directory = state.directory();
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
                &directory.sync,
                access,
                person.person_type(),
                &base,
            ))
        })
        .collect();
    query.apply(&DEVICE_ACCESSES, all).map(Json)
}

fn find_lock<'a>(catalog: &'a Catalog, id: &str) -> ApiResult<&'a Lock> {
    catalog
        .lock(resource_id(id)?)
        .ok_or_else(ApiError::not_found)
}

fn lock_resource(catalog: &Catalog, lock: &Lock, base: &ApiBase) -> Resource {
    let attributes = json!({
        "name": lock.name,
        "serial_number": lock.serial_number,
        "state": "locked",
        "pending_state": null,
        "connected": lock.connected,
        "alive": lock.connected,
        "connected_at": timestamp(lock.connected_at),
        "heartbeat_interval": 1200,
        "wake_wifi": "user_action",
        "signal_quality": if lock.connected { 3 } else { 0 },
        "power_source": lock.power_source,
        "power_level": lock.power_level,
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
