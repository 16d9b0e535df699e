//! `/access_persons` (remotelock-api.md §3.5).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{NaiveDateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::device_sync;
use crate::directory::{AccessPerson, PersonKind, PersonType};
use crate::envelope::{ApiBase, Collection, RequestBody, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult, Violations};
use crate::listing::{ListQuery, ListSpec};
use crate::person_input::{PersonDraft, PersonInput};
use crate::pin_conflicts::{PinGuard, Stage};
use crate::state::AppState;
use crate::wall_clock;

const PERSONS: ListSpec = ListSpec {
    sortable: &[
        "created_at",
        "updated_at",
        "name",
        "department",
        "starts_at",
        "ends_at",
    ],
    default_sort: "created_at",
};

pub async fn list(
    State(state): State<AppState>,
    base: ApiBase,
    mut query: ListQuery,
) -> ApiResult<Json<Collection>> {
    // Without a status filter the API lists only current and upcoming persons.
    query.default_filter("status", &["current", "upcoming"]);
    let local_now = state.local_now();
    let all = state
        .directory()
        .persons()
        .map(|p| person_resource(p, local_now, &base))
        .collect();
    query.apply(&PERSONS, all).map(Json)
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let directory = state.directory();
    let person = directory
        .person(resource_id(&id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Single {
        data: person_resource(person, state.local_now(), &base),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<(StatusCode, Json<Single>)> {
    let attributes = &body.attributes;
    let person_type = body.required_type(PersonType::parse)?;
    let mut violations = Violations::default();
    let input = PersonInput::parse(attributes, &mut violations);
    let mut draft = PersonDraft::new(person_type);
    let pin_change = draft.apply(input);

    let local_now = state.local_now();
    let mut directory = state.directory();
    draft.validate(
        pin_change,
        &PinGuard::new(&state, &directory, local_now),
        &Stage::Create,
        violations,
        attributes,
    )?;
    let person = draft.into_person(Uuid::new_v4(), Utc::now());
    let resource = person_resource(&person, local_now, &base);
    directory.add_person(person);
    Ok((StatusCode::CREATED, Json(Single { data: resource })))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<Json<Single>> {
    let id = resource_id(&id)?;
    let attributes = &body.attributes;
    let mut violations = Violations::default();
    let input = PersonInput::parse(attributes, &mut violations);

    let local_now = state.local_now();
    let mut directory = state.directory();
    let person = directory.person(id).ok_or_else(ApiError::not_found)?;
    // The status code for this is undocumented; 422 is our choice (README).
    if person.status(local_now).restricts_update() {
        return Err(ApiError::invalid(
            attributes,
            None,
            "An expired or deactivated access person cannot be updated",
        ));
    }
    let old_pin = person.pin.clone();
    let mut draft = PersonDraft::from_person(person);
    let pin_change = draft.apply(input);
    draft.validate(
        pin_change,
        &PinGuard::new(&state, &directory, local_now),
        &Stage::Update { person: id },
        violations,
        attributes,
    )?;
    let person = directory.person_mut(id).expect("person looked up above");
    draft.write_to(person, Utc::now());
    // A new PIN goes to every lock the person reaches.
    if person.pin != old_pin {
        let mut locks = directory.locks_of(&state.catalog, id);
        locks.sort();
        locks.dedup();
        device_sync::sync(&state, &mut directory, id, &locks);
    }
    let person = directory.person(id).expect("person looked up above");
    Ok(Json(Single {
        data: person_resource(person, local_now, &base),
    }))
}

/// Ends access but keeps the record (and its history); idempotent.
pub async fn deactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let mut directory = state.directory();
    let person = directory
        .person_mut(resource_id(&id)?)
        .ok_or_else(ApiError::not_found)?;
    if !person.deactivated {
        person.deactivated = true;
        person.updated_at = Utc::now();
    }
    Ok(Json(Single {
        data: person_resource(person, state.local_now(), &base),
    }))
}

/// Test control: someone in RemoteLock's dashboard makes a deactivated person active again
/// (inferred: the API documents no way back, the dashboard is not documented). `false` for
/// an unknown person.
pub fn reactivate(state: &AppState, id: Uuid) -> bool {
    let mut directory = state.directory();
    let Some(person) = directory.person_mut(id) else {
        return false;
    };
    if person.deactivated {
        person.deactivated = false;
        person.updated_at = Utc::now();
        let mut locks = directory.locks_of(&state.catalog, id);
        locks.sort();
        locks.dedup();
        device_sync::sync(state, &mut directory, id, &locks);
    }
    true
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .directory()
        .delete_person(resource_id(&id)?, Utc::now())
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

fn person_resource(person: &AccessPerson, local_now: NaiveDateTime, base: &ApiBase) -> Resource {
    let status = person.status(local_now);
    let mut attributes = json!({
        "name": person.name,
        "email": person.email,
        "phone": person.phone,
        "pin": person.pin,
        "card_number": person.card_number,
        "status": status,
        "source": null,
        "created_at": timestamp(person.created_at),
        "updated_at": timestamp(person.updated_at),
    });
    match &person.kind {
        PersonKind::User { department } => attributes["department"] = json!(department),
        PersonKind::Guest { window } => {
            attributes["starts_at"] = json!(wall_clock::format(window.starts_at));
            attributes["ends_at"] = json!(wall_clock::format(window.ends_at));
        }
    }
    let self_link = base.url(format_args!("/access_persons/{}", person.id));
    let resource = Resource::new(
        person.person_type().as_str(),
        person.id,
        attributes,
        self_link,
    )
    .link(
        "accesses",
        base.url(format_args!("/access_persons/{}/accesses", person.id)),
    );
    if status.restricts_update() {
        resource.with_meta(json!({ "restricted_actions": ["update"] }))
    } else {
        resource
    }
}
