//! `GET /events[/:id]` (remotelock-api.md §3.8): the account's activity. The simulator
//! records only what it models, the outcome of a lock syncing a person's PIN
//! (`device_sync`): `access_person_synced_event` and `access_person_sync_failed_event`.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::directory::PersonType;
use crate::envelope::{ApiBase, Collection, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult};
use crate::listing::{ListQuery, ListSpec};
use crate::state::{AppState, SimState};

const EVENTS: ListSpec = ListSpec {
    sortable: &["created_at", "occurred_at"],
    default_sort: "-occurred_at",
};

/// The event types the simulator records; serialized as the resource `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    /// The lock took the person's PIN (`status: "succeeded"`).
    #[serde(rename = "access_person_synced_event")]
    AccessPersonSynced,
    /// The lock refused or never got it (`status: "failed"`, reason in `status_info`).
    #[serde(rename = "access_person_sync_failed_event")]
    AccessPersonSyncFailed,
}

impl EventKind {
    /// The resource `type`: the event name with the `_event` suffix.
    pub fn resource_type(self) -> &'static str {
        match self {
            Self::AccessPersonSynced => "access_person_synced_event",
            Self::AccessPersonSyncFailed => "access_person_sync_failed_event",
        }
    }

    pub fn status(self) -> &'static str {
        match self {
            Self::AccessPersonSynced => "succeeded",
            Self::AccessPersonSyncFailed => "failed",
        }
    }
}

/// One recorded event: a lock (the publisher) reporting on a person (the associated resource).
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub kind: EventKind,
    /// Set on failures, e.g. `pin_conflict`, `timeout`.
    pub status_info: Option<String>,
    pub lock_id: Uuid,
    /// The lock's location's zone.
    pub time_zone: Tz,
    pub person_id: Uuid,
    pub person_type: PersonType,
    /// The person's name when the event happened.
    pub person_name: String,
    pub occurred_at: DateTime<Utc>,
}

/// What a test sees of a recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct EventSnapshot {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// `succeeded` or `failed`.
    pub status: String,
    pub status_info: Option<String>,
    /// The publisher.
    pub lock_id: String,
    /// The associated resource.
    pub person_id: String,
    /// `access_guest` or `access_user`.
    pub person_type: String,
    pub person_name: String,
    pub time_zone: Tz,
    pub occurred_at: DateTime<Utc>,
}

/// Events in the order they happened.
#[derive(Debug, Default)]
pub struct EventLog(Vec<Event>);

impl EventLog {
    pub fn record(&mut self, event: Event) {
        self.0.push(event);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.0.iter()
    }
}

impl SimState {
    pub fn events(&self) -> Vec<EventSnapshot> {
        self.directory().events.iter().map(snapshot).collect()
    }
}

fn snapshot(event: &Event) -> EventSnapshot {
    EventSnapshot {
        id: event.id.to_string(),
        kind: event.kind,
        status: event.kind.status().to_owned(),
        status_info: event.status_info.clone(),
        lock_id: event.lock_id.to_string(),
        person_id: event.person_id.to_string(),
        person_type: event.person_type.as_str().to_owned(),
        person_name: event.person_name.clone(),
        time_zone: event.time_zone,
        occurred_at: event.occurred_at,
    }
}

pub async fn list(
    State(state): State<AppState>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let all = state
        .directory()
        .events
        .iter()
        .map(|e| event_resource(e, &base))
        .collect();
    query.apply(&EVENTS, all).map(Json)
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let id = resource_id(&id)?;
    let directory = state.directory();
    let event = directory
        .events
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Single {
        data: event_resource(event, &base),
    }))
}

fn event_resource(event: &Event, base: &ApiBase) -> Resource {
    let at = timestamp(event.occurred_at);
    let mut attributes = json!({
        "source": "device",
        "status": event.kind.status(),
        "time_zone": event.time_zone.name(),
        "occurred_at": at,
        "created_at": at,
        "updated_at": at,
        "publisher_type": "lock",
        "publisher_id": event.lock_id,
        "associated_resource_type": event.person_type.as_str(),
        "associated_resource_id": event.person_id,
        "associated_resource_name": event.person_name,
    });
    if let Some(info) = &event.status_info {
        attributes["status_info"] = json!(info);
    }
    Resource::new(
        event.kind.resource_type(),
        event.id,
        attributes,
        base.url(format_args!("/events/{}", event.id)),
    )
    .link(
        "publisher",
        base.url(format_args!("/devices/{}", event.lock_id)),
    )
    .link(
        "associated_resource",
        base.url(format_args!("/access_persons/{}", event.person_id)),
    )
}
