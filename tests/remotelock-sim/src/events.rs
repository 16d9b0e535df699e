//! `GET /events[/:id]` (remotelock-api.md §3.8): the account's activity, as the simulator
//! models it: locks syncing PINs (`device_sync`), the keypad (`keypad`) and the locks'
//! health (`lock_state`). Every event goes through [`upload`]: a lock uploads what happened
//! `event_upload_lag` later, and only while connected (an offline lock keeps it until it
//! reconnects), so `created_at` can lag `occurred_at`.

use std::fmt;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::directory::{Directory, PersonType};
use crate::envelope::{ApiBase, Collection, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult};
use crate::listing::{ListQuery, ListSpec};
use crate::state::{AppState, SimState};

const EVENTS: ListSpec = ListSpec {
    sortable: &["created_at", "occurred_at"],
    default_sort: "-occurred_at",
};

/// Every event name the docs list (without the `_event` suffix); subscriptions may name any.
/// Those a lock can publish come first ([`LOCK_EVENT_NAMES`]).
pub const EVENT_NAMES: [&str; 19] = [
    "connectivity",
    "power_level_low",
    "battery_replaced",
    "access_person_synced",
    "access_person_sync_failed",
    "access_guest_late_sync",
    "reset",
    "unlocked",
    "locked",
    "access_denied",
    "jammed",
    "access_person_used",
    "acs_door_opened",
    "acs_door_closed",
    "acs_door_held_open",
    "temperature_changed",
    "humidity_changed",
    "relay_enabled",
    "relay_disabled",
];

/// The documented set a `lock` publisher accepts.
pub const LOCK_EVENT_NAMES: &[&str] = EVENT_NAMES.split_at(11).0;

/// The event types the simulator records; serialized as the resource `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    /// The lock took the person's PIN (`status: "succeeded"`).
    #[serde(rename = "access_person_synced_event")]
    AccessPersonSynced,
    /// The lock refused or never got it (`status: "failed"`, reason in `status_info`).
    #[serde(rename = "access_person_sync_failed_event")]
    AccessPersonSyncFailed,
    /// Someone entered a person's PIN at the keypad: published by the person, about the lock.
    #[serde(rename = "access_person_used_event")]
    AccessPersonUsed,
    /// The lock opened (for a PIN: `method: "pin"`, about the person).
    #[serde(rename = "unlocked_event")]
    Unlocked,
    /// The lock refused a credential.
    #[serde(rename = "access_denied_event")]
    AccessDenied,
    /// The lock connected (`succeeded`) or was lost (`failed`); `connected_at` is its last
    /// connection.
    #[serde(rename = "connectivity_event")]
    Connectivity,
    /// The lock reported a battery level below the threshold (`power_level`).
    #[serde(rename = "power_level_low_event")]
    PowerLevelLow,
    /// A low battery came back full.
    #[serde(rename = "battery_replaced_event")]
    BatteryReplaced,
}

impl EventKind {
    /// The event name, as subscriptions name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccessPersonSynced => "access_person_synced",
            Self::AccessPersonSyncFailed => "access_person_sync_failed",
            Self::AccessPersonUsed => "access_person_used",
            Self::Unlocked => "unlocked",
            Self::AccessDenied => "access_denied",
            Self::Connectivity => "connectivity",
            Self::PowerLevelLow => "power_level_low",
            Self::BatteryReplaced => "battery_replaced",
        }
    }

    /// The resource `type`: the event name with the `_event` suffix.
    pub fn resource_type(self) -> String {
        format!("{}_event", self.name())
    }

    /// Only `access_person_used` is published by the person; the lock publishes the rest.
    pub fn published_by_person(self) -> bool {
        self == Self::AccessPersonUsed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Succeeded,
    Failed,
}

/// Who caused the event (documented values `user`, `network`, `device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The lock reports it.
    Device,
    /// The service noticed it (connections).
    Network,
}

/// A PIN typed at a keypad: shown in the event, as the docs' examples do, never in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EnteredPin(pub String);

impl fmt::Debug for EnteredPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnteredPin(..)")
    }
}

/// The person an event is about (or, for `access_person_used`, by).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventPerson {
    #[serde(rename = "person_id")]
    pub id: Uuid,
    #[serde(rename = "person_type", serialize_with = "person_type_name")]
    pub kind: PersonType,
    /// The person's name when the event happened.
    #[serde(rename = "person_name")]
    pub name: String,
}

fn person_type_name<S: serde::Serializer>(kind: &PersonType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// One event. Every modelled event concerns one lock; most concern a person too.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub kind: EventKind,
    pub status: EventStatus,
    pub source: EventSource,
    pub lock_id: Uuid,
    pub lock_name: String,
    /// The lock's location, for location subscriptions.
    pub location_id: Uuid,
    /// The lock's location's zone.
    pub time_zone: Tz,
    pub person: Option<EventPerson>,
    /// Set on failures, e.g. `pin_conflict`, `timeout`.
    pub status_info: Option<String>,
    /// The keypad's `"pin"` and what was typed.
    pub pin: Option<EnteredPin>,
    pub power_level: Option<u8>,
    pub connected_at: Option<DateTime<Utc>>,
    pub occurred_at: DateTime<Utc>,
    /// When the service recorded it: set by [`upload`].
    pub created_at: DateTime<Utc>,
    /// A succeeded `access_person_used` that is the person's first (for `first_access`
    /// subscriptions): set by the log.
    pub first_access: bool,
}

impl Event {
    /// What `lock_id` reports now, with status `status`; about nobody yet.
    pub fn on_lock(state: &SimState, lock_id: Uuid, kind: EventKind, status: EventStatus) -> Self {
        let lock = state.catalog.lock(lock_id).expect("a seeded lock");
        let location = state
            .catalog
            .location(lock.location_id)
            .expect("seeded lock's location");
        let now = Utc::now();
        Self {
            id: Uuid::new_v4(),
            kind,
            status,
            source: EventSource::Device,
            lock_id,
            lock_name: lock.name.to_owned(),
            location_id: location.id,
            time_zone: location.time_zone,
            person: None,
            status_info: None,
            pin: None,
            power_level: None,
            connected_at: None,
            occurred_at: now,
            created_at: now,
            first_access: false,
        }
    }

    pub fn about(mut self, id: Uuid, kind: PersonType, name: &str) -> Self {
        self.person = Some(EventPerson {
            id,
            kind,
            name: name.to_owned(),
        });
        self
    }

    /// `(type, id)` of the publisher: the person for `access_person_used`, else the lock.
    pub fn publisher(&self) -> (&'static str, Uuid) {
        match &self.person {
            Some(person) if self.kind.published_by_person() => (person.kind.as_str(), person.id),
            _ => ("lock", self.lock_id),
        }
    }
}

/// What a test sees of a recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct EventSnapshot {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub status: EventStatus,
    pub source: EventSource,
    pub status_info: Option<String>,
    /// The lock: publisher, or for `access_person_used` the associated resource.
    pub lock_id: String,
    /// The person, when the event concerns one (`person_id`, `person_type`, `person_name`).
    #[serde(flatten)]
    pub person: Option<EventPerson>,
    pub power_level: Option<u8>,
    pub connected_at: Option<DateTime<Utc>>,
    pub time_zone: Tz,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl EventSnapshot {
    /// The person's name, or `""` for an event about no one.
    pub fn person_name(&self) -> &str {
        self.person.as_ref().map_or("", |p| p.name.as_str())
    }
}

/// Events in the order the service recorded them.
#[derive(Debug, Default)]
pub struct EventLog(Vec<Event>);

impl EventLog {
    fn record(&mut self, mut event: Event) -> Event {
        event.first_access = event.kind == EventKind::AccessPersonUsed
            && event.status == EventStatus::Succeeded
            && !self.0.iter().any(|earlier| {
                earlier.kind == EventKind::AccessPersonUsed
                    && earlier.status == EventStatus::Succeeded
                    && earlier.person.as_ref().map(|p| p.id) == event.person.as_ref().map(|p| p.id)
            });
        self.0.push(event.clone());
        event
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.0.iter()
    }
}

/// The service records `event` now (`created_at`) and notifies its subscribers.
pub fn record(state: &SimState, directory: &mut Directory, mut event: Event) {
    event.created_at = Utc::now();
    let event = directory.events.record(event);
    state.webhooks.dispatch(event);
}

/// A lock reports `event`: recorded `event_upload_lag` after it occurred, or held by an
/// offline lock until it reconnects ([`crate::lock_state`]). Returns the event's id.
pub fn upload(state: &AppState, directory: &mut Directory, event: Event) -> Uuid {
    let id = event.id;
    if !directory.locks.connected(event.lock_id) {
        directory.locks.hold(event);
        return id;
    }
    let lag = state.config.event_upload_lag;
    if lag.is_zero() {
        record(state, directory, event);
        return id;
    }
    let state = state.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(lag) => {}
            () = state.shutdown.cancelled() => return,
        }
        let mut directory = state.directory();
        record(&state, &mut directory, event);
    });
    id
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
        status: event.status,
        source: event.source,
        status_info: event.status_info.clone(),
        lock_id: event.lock_id.to_string(),
        person: event.person.clone(),
        power_level: event.power_level,
        connected_at: event.connected_at,
        time_zone: event.time_zone,
        occurred_at: event.occurred_at,
        created_at: event.created_at,
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

/// The event as `/events` shows it, and as webhooks deliver it.
pub fn event_resource(event: &Event, base: &ApiBase) -> Resource {
    let lock = ("lock", event.lock_id, Value::from(event.lock_name.clone()));
    let person = event
        .person
        .as_ref()
        .map(|p| (p.kind.as_str(), p.id, Value::from(p.name.clone())));
    let (publisher, associated) = if event.kind.published_by_person() {
        (person.clone().unwrap_or(lock.clone()), Some(lock))
    } else {
        (lock, person)
    };
    let (associated_type, associated_id, associated_name) = match &associated {
        Some((kind, id, name)) => (json!(kind), json!(id), name.clone()),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let mut attributes = json!({
        "source": event.source,
        "status": event.status,
        "time_zone": event.time_zone.name(),
        "occurred_at": timestamp(event.occurred_at),
        "created_at": timestamp(event.created_at),
        "updated_at": timestamp(event.created_at),
        "publisher_type": publisher.0,
        "publisher_id": publisher.1,
        "associated_resource_type": associated_type,
        "associated_resource_id": associated_id,
        "associated_resource_name": associated_name,
    });
    let optional = [
        ("status_info", event.status_info.as_ref().map(|s| json!(s))),
        ("method", event.pin.as_ref().map(|_| json!("pin"))),
        ("pin", event.pin.as_ref().map(|p| json!(p))),
        ("power_level", event.power_level.map(|l| json!(l))),
        (
            "connected_at",
            event.connected_at.map(|at| json!(timestamp(at))),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            attributes[name] = value;
        }
    }
    let mut resource = Resource::new(
        event.kind.resource_type(),
        event.id,
        attributes,
        base.url(format_args!("/events/{}", event.id)),
    )
    .sorted_by_time("occurred_at", event.occurred_at)
    .sorted_by_time("created_at", event.created_at)
    .link("publisher", party_url(base, publisher.0, publisher.1));
    if let Some((kind, id, _)) = associated {
        resource = resource.link("associated_resource", party_url(base, kind, id));
    }
    resource
}

fn party_url(base: &ApiBase, kind: &str, id: Uuid) -> String {
    match kind {
        "lock" => base.url(format_args!("/devices/{id}")),
        _ => base.url(format_args!("/access_persons/{id}")),
    }
}
