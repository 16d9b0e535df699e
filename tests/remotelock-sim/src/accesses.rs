//! `/access_persons/:id/accesses` (remotelock-api.md §3.6): granting a person a lock or a
//! whole location.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{NaiveTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::device_sync::{self, SyncState};
use crate::directory::{Access, Accessible, AccessibleType, Directory, PersonType};
use crate::envelope::{ApiBase, Collection, RequestBody, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult, Violations};
use crate::listing::{ListQuery, ListSpec};
use crate::pin_conflicts::{PinGuard, Stage};
use crate::state::AppState;
use crate::wall_clock;

const ACCESSES: ListSpec = ListSpec {
    sortable: &["created_at"],
    default_sort: "created_at",
};

/// Every `accessible_type` the API documents. Only locks and locations exist in the
/// simulated account, so ids of the other types are never found (404).
const GRANTABLE_TYPES: [&str; 8] = [
    "acs_door",
    "acs_elevator_floor",
    "lock",
    "zwave_lock",
    "schlage_home_lock",
    "connector_lock",
    "door_group",
    "location",
];

pub async fn list(
    State(state): State<AppState>,
    Path(person_id): Path<String>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let person_id = resource_id(&person_id)?;
    let directory = state.directory();
    let person = directory
        .person(person_id)
        .ok_or_else(ApiError::not_found)?;
    let all = directory
        .accesses_of(person_id)
        .map(|a| access_resource(&state.catalog, &directory, a, person.person_type(), &base))
        .collect();
    query.apply(&ACCESSES, all).map(Json)
}

pub async fn show(
    State(state): State<AppState>,
    Path((person_id, access_id)): Path<(String, String)>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let (person_id, access_id) = (resource_id(&person_id)?, resource_id(&access_id)?);
    let directory = state.directory();
    let person = directory
        .person(person_id)
        .ok_or_else(ApiError::not_found)?;
    let access = directory
        .accesses_of(person_id)
        .find(|a| a.id == access_id)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Single {
        data: access_resource(
            &state.catalog,
            &directory,
            access,
            person.person_type(),
            &base,
        ),
    }))
}

/// Grant → 201. Granting the same record twice to one person is a 409 (our reading of the
/// documented "duplicate resource" code). A person's PIN is judged for the locks the grant
/// reaches (`pin_conflicts`): with device-scoped uniqueness this is where clashes show.
/// Then the locks it reaches sync the person (`device_sync`).
pub async fn create(
    State(state): State<AppState>,
    Path(person_id): Path<String>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<(StatusCode, Json<Single>)> {
    let person_id = resource_id(&person_id)?;
    let mut directory = state.directory();
    let person = directory
        .person(person_id)
        .ok_or_else(ApiError::not_found)?;
    let (person_type, pin) = (person.person_type(), person.pin.clone());
    let grant = GrantInput::parse(&body.attributes)?;
    let accessible = resolve(&state.catalog, &grant.accessible_type, &grant.accessible_id)?;
    if accessible.kind == AccessibleType::Lock && directory.locks.get(accessible.id).is_none() {
        // Deregistered.
        return Err(ApiError::not_found());
    }
    if directory
        .accesses_of(person_id)
        .any(|a| a.accessible == accessible)
    {
        return Err(ApiError::general(
            StatusCode::CONFLICT,
            "The access person already has access to this accessible",
            "duplicate_resource",
        ));
    }
    if let Some(pin) = pin {
        let pins = PinGuard::new(&state, &directory, state.local_now());
        let locks = state.catalog.locks_reached(accessible);
        let stage = Stage::Grant {
            person: person_id,
            locks: locks.iter().map(|lock| lock.id).collect(),
        };
        let mut violations = Violations::default();
        if pins.clashes(&pin, &stage) {
            pins.report_conflict(&mut violations);
        }
        violations.into_result(&body.attributes)?;
    }
    let now = Utc::now();
    let access = Access {
        id: Uuid::new_v4(),
        person_id,
        accessible,
        guest_start_time: grant.guest_start_time,
        guest_end_time: grant.guest_end_time,
        created_at: now,
        updated_at: now,
    };
    let reached: Vec<Uuid> = state
        .catalog
        .locks_reached(accessible)
        .iter()
        .map(|lock| lock.id)
        .collect();
    let to_sync = device_sync::needing_sync(&directory, &state, person_id, &reached);
    directory.add_access(access.clone());
    device_sync::sync(&state, &mut directory, person_id, &to_sync);
    let resource = access_resource(&state.catalog, &directory, &access, person_type, &base);
    Ok((StatusCode::CREATED, Json(Single { data: resource })))
}

/// Only `access_schedule_id` may change; the simulated account has no schedules, so only
/// `null` is accepted (any id is unknown → 404).
pub async fn update(
    State(state): State<AppState>,
    Path((person_id, access_id)): Path<(String, String)>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<Json<Single>> {
    let (person_id, access_id) = (resource_id(&person_id)?, resource_id(&access_id)?);
    require_no_schedule(&body.attributes)?;
    let mut directory = state.directory();
    let person_type = directory
        .person(person_id)
        .ok_or_else(ApiError::not_found)?
        .person_type();
    let access = directory
        .access_mut(person_id, access_id)
        .ok_or_else(ApiError::not_found)?;
    access.updated_at = Utc::now();
    let access = access.clone();
    Ok(Json(Single {
        data: access_resource(&state.catalog, &directory, &access, person_type, &base),
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    Path((person_id, access_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (person_id, access_id) = (resource_id(&person_id)?, resource_id(&access_id)?);
    if state.directory().revoke_access(person_id, access_id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

struct GrantInput {
    accessible_type: String,
    accessible_id: String,
    guest_start_time: Option<NaiveTime>,
    guest_end_time: Option<NaiveTime>,
}

impl GrantInput {
    fn parse(attributes: &Map<String, Value>) -> ApiResult<Self> {
        let mut violations = Violations::default();
        let mut required = |name: &str| violations.text(attributes, name, true).unwrap_or_default();
        let accessible_type = required("accessible_type");
        let accessible_id = required("accessible_id");
        if !accessible_type.is_empty() && !GRANTABLE_TYPES.contains(&accessible_type.as_str()) {
            violations.on("accessible_type", "is not included in the list");
        }
        let mut time_of_day = |name: &str| match attributes.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(raw)) => wall_clock::parse_time_of_day(raw).or_else(|| {
                violations.on(name, "is invalid");
                None
            }),
            Some(_) => {
                violations.on(name, "is invalid");
                None
            }
        };
        let guest_start_time = time_of_day("guest_start_time");
        let guest_end_time = time_of_day("guest_end_time");
        violations.into_result(attributes)?;
        require_no_schedule(attributes)?;
        Ok(Self {
            accessible_type,
            accessible_id,
            guest_start_time,
            guest_end_time,
        })
    }
}

/// A reference to a record that does not exist is a 404, not a 422 (changelog 2019-02-14).
fn require_no_schedule(attributes: &Map<String, Value>) -> ApiResult<()> {
    match attributes.get("access_schedule_id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) if id.is_empty() => Ok(()),
        Some(_) => Err(ApiError::not_found()),
    }
}

fn resolve(catalog: &Catalog, kind: &str, id: &str) -> ApiResult<Accessible> {
    let id: Uuid = resource_id(id)?;
    let kind = match kind {
        "lock" if catalog.lock(id).is_some() => AccessibleType::Lock,
        "location" if catalog.location(id).is_some() => AccessibleType::Location,
        _ => return Err(ApiError::not_found()),
    };
    Ok(Accessible { kind, id })
}

/// Shared with `GET /devices/:id/access_person_accesses`. Sync counters follow each lock's
/// sync of the person (`device_sync`); without a record (a person set up outside the API) a
/// connected lock has the code and an offline one is still pending.
pub fn access_resource(
    catalog: &Catalog,
    directory: &Directory,
    access: &Access,
    person_type: PersonType,
    base: &ApiBase,
) -> Resource {
    let devices = catalog.locks_reached(access.accessible);
    let accessible_path = match access.accessible.kind {
        AccessibleType::Lock => format!("/devices/{}", access.accessible.id),
        AccessibleType::Location => format!("/locations/{}", access.accessible.id),
    };
    let (mut synced, mut failed) = (0, 0);
    for device in &devices {
        match directory.sync.state(access.person_id, device.id) {
            Some(SyncState::Synced) => synced += 1,
            Some(SyncState::Failed { .. }) => failed += 1,
            Some(SyncState::Pending { .. }) => {}
            None if directory.locks.connected(device.id) => synced += 1,
            None => {}
        }
    }
    let attributes = json!({
        "accessible_type": access.accessible.kind.as_str(),
        "accessible_id": access.accessible.id,
        "access_person_id": access.person_id,
        "access_person_type": person_type.as_str(),
        "access_schedule_id": null,
        "guest_start_time": access.guest_start_time.map(wall_clock::format_time_of_day),
        "guest_end_time": access.guest_end_time.map(wall_clock::format_time_of_day),
        "devices_count": devices.len(),
        "devices_synced_count": synced,
        "devices_pending_sync_count": devices.len() - synced - failed,
        "devices_failed_sync_count": failed,
        "created_at": timestamp(access.created_at),
        "updated_at": timestamp(access.updated_at),
    });
    let person_path = format!("/access_persons/{}", access.person_id);
    Resource::new(
        "access_person_access",
        access.id,
        attributes,
        base.url(format_args!("{person_path}/accesses/{}", access.id)),
    )
    .link("access_person", base.url(&person_path))
    .link("accessible", base.url(accessible_path))
}
