//! `POST`/`PUT /notification_subscriptions` (remotelock-api.md §3.9): which events of which
//! publisher go to which subscriber. Accounts and locations accept every event type; a lock
//! only its documented set (the same is assumed for `zwave_lock` and `schlage_home_lock`); a
//! person only `access_person_used`, which alone takes `first_access`. Missing or invalid
//! attributes are 422; a publisher or subscriber that does not exist is 404 (the docs'
//! rule for unknown polymorphic records). Listing, showing and deleting are
//! `notification_records`'.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::directory::{Directory, PersonType};
use crate::envelope::{ApiBase, RequestBody, Single, resource_id};
use crate::errors::{ApiError, ApiResult, Violations};
use crate::events::{EVENT_NAMES, Event, LOCK_EVENT_NAMES};
use crate::listing::ListSpec;
use crate::notification_records::{Deletable, NotificationBook, Record, Stamp};
use crate::notification_subscribers::SubscriberType;
use crate::state::{AppState, SimState};

/// Every documented `publisher_type`.
const PUBLISHER_TYPES: [&str; 13] = [
    "account",
    "location",
    "access_user",
    "access_guest",
    "lock",
    "thermostat",
    "power_plug",
    "acs_door",
    "acs_controller",
    "acs_elevator",
    "acs_elevator_floor",
    "zwave_lock",
    "schlage_home_lock",
];

const FIRST_ACCESS_EVENT: &str = "access_person_used";

/// The event types a publisher type accepts; `None` when the docs do not say (only
/// publishers that never exist in the simulated account).
fn accepted_events(publisher_type: &str) -> Option<&'static [&'static str]> {
    match publisher_type {
        "account" | "location" => Some(&EVENT_NAMES),
        "lock" | "zwave_lock" | "schlage_home_lock" => Some(LOCK_EVENT_NAMES),
        "access_user" | "access_guest" => Some(&[FIRST_ACCESS_EVENT]),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChoice {
    pub name: &'static str,
    /// Only the person's first successful use (`access_person_used`).
    pub first_access: bool,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub stamp: Stamp,
    pub events: Vec<EventChoice>,
    pub publisher_type: &'static str,
    pub publisher_id: Uuid,
    pub subscriber_type: SubscriberType,
    pub subscriber_id: Uuid,
}

impl Subscription {
    /// Whether `event` is one this subscription asks for.
    pub fn wants(&self, event: &Event) -> bool {
        let chosen = self.events.iter().any(|choice| {
            choice.name == event.kind.name() && (!choice.first_access || event.first_access)
        });
        let published = match self.publisher_type {
            // Only the seeded account has events.
            "account" => true,
            "location" => event.location_id == self.publisher_id,
            _ => event.publisher() == (self.publisher_type, self.publisher_id),
        };
        chosen && published
    }

    fn settable(&self) -> Map<String, Value> {
        let events: Vec<Value> = self
            .events
            .iter()
            .map(|choice| match choice.name {
                FIRST_ACCESS_EVENT => {
                    json!({"event_type": choice.name, "first_access": choice.first_access})
                }
                name => json!({"event_type": name}),
            })
            .collect();
        [
            ("events", json!(events)),
            ("publisher_type", json!(self.publisher_type)),
            ("publisher_id", json!(self.publisher_id)),
            ("subscriber_type", json!(self.subscriber_type.as_str())),
            ("subscriber_id", json!(self.subscriber_id)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

impl Record for Subscription {
    const LIST: ListSpec = ListSpec {
        sortable: &["created_at"],
        default_sort: "created_at",
    };
    const PATH: &'static str = "/notification_subscriptions";

    fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    fn kind(&self) -> &'static str {
        "notification_subscription"
    }

    fn attributes(&self) -> Map<String, Value> {
        self.settable()
    }

    fn links(&self) -> Vec<(&'static str, String)> {
        vec![(
            "subscriber",
            format!("/notification_subscribers/{}", self.subscriber_id),
        )]
    }

    fn all(book: &NotificationBook) -> &[Self] {
        &book.subscriptions
    }
}

impl Deletable for Subscription {
    fn remove(book: &mut NotificationBook, id: Uuid) -> bool {
        let before = book.subscriptions.len();
        book.subscriptions.retain(|s| s.stamp.id != id);
        book.subscriptions.len() < before
    }
}

/// A subscription's attributes, checked.
struct Checked {
    events: Vec<EventChoice>,
    publisher_type: &'static str,
    publisher_id: Uuid,
    subscriber_type: SubscriberType,
    subscriber_id: Uuid,
}

/// 422 for what is missing or malformed (and events the publisher type cannot publish), then
/// 404 for a publisher or subscriber that does not exist. `echo` is what the client sent.
fn check(
    state: &SimState,
    directory: &Directory,
    book: &NotificationBook,
    attributes: &Map<String, Value>,
    echo: &Map<String, Value>,
) -> ApiResult<Checked> {
    let mut violations = Violations::default();
    let events = event_choices(attributes.get("events"), &mut violations);
    let publisher_type = violations.one_of(attributes, "publisher_type", &PUBLISHER_TYPES);
    let subscriber_types = [
        SubscriberType::Email.as_str(),
        SubscriberType::Text.as_str(),
        SubscriberType::Webhook.as_str(),
    ];
    let subscriber_type = violations
        .one_of(attributes, "subscriber_type", &subscriber_types)
        .and_then(SubscriberType::parse);
    let publisher_id = violations.text(attributes, "publisher_id", true);
    let subscriber_id = violations.text(attributes, "subscriber_id", true);
    if let (Some(events), Some(accepted)) = (&events, publisher_type.and_then(accepted_events)) {
        for choice in events.iter().filter(|c| !accepted.contains(&c.name)) {
            violations.on(
                "events",
                &format!(
                    "{} is not published by {}",
                    choice.name,
                    publisher_type.unwrap_or_default()
                ),
            );
        }
    }
    let parsed = (|| {
        Some((
            events?,
            publisher_type?,
            publisher_id?,
            subscriber_type?,
            subscriber_id?,
        ))
    })();
    violations.into_result(echo)?;
    let (events, publisher_type, publisher_id, subscriber_type, subscriber_id) =
        parsed.expect("no violations, so every attribute parsed");
    let publisher_id = resource_id(&publisher_id)?;
    let subscriber_id = resource_id(&subscriber_id)?;
    let publisher_exists = match publisher_type {
        "account" => publisher_id == state.accounts.seeded().id,
        "location" => state.catalog.location(publisher_id).is_some(),
        "lock" => state.catalog.lock(publisher_id).is_some(),
        person_type => directory
            .person(publisher_id)
            .is_some_and(|p| Some(p.person_type()) == PersonType::parse(person_type)),
    };
    let subscriber_exists = book
        .subscriber(subscriber_id)
        .is_some_and(|s| s.subscriber_type() == subscriber_type);
    if !(publisher_exists && subscriber_exists) {
        return Err(ApiError::not_found());
    }
    Ok(Checked {
        events,
        publisher_type,
        publisher_id,
        subscriber_type,
        subscriber_id,
    })
}

/// `[{"event_type": "unlocked"}, {"event_type": "access_person_used", "first_access": true}]`.
fn event_choices(raw: Option<&Value>, violations: &mut Violations) -> Option<Vec<EventChoice>> {
    let items = match raw {
        Some(Value::Array(items)) if !items.is_empty() => items,
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            violations.on("events", "can't be blank");
            return None;
        }
        Some(_) => {
            violations.on("events", "is invalid");
            return None;
        }
    };
    let before = violations.concerns("events");
    let choices: Vec<EventChoice> = items
        .iter()
        .filter_map(|item| {
            let name = item
                .get("event_type")
                .and_then(Value::as_str)
                .and_then(|name| EVENT_NAMES.iter().copied().find(|n| *n == name));
            let first_access = match item.get("first_access") {
                None | Some(Value::Null) => Some(false),
                Some(Value::Bool(first)) if name == Some(FIRST_ACCESS_EVENT) => Some(*first),
                Some(_) => None,
            };
            match (name, first_access) {
                (Some(name), Some(first_access)) => Some(EventChoice { name, first_access }),
                (None, _) => {
                    violations.on("events", "has an unknown event_type");
                    None
                }
                (Some(_), None) => {
                    violations.on("events", "first_access is only for access_person_used");
                    None
                }
            }
        })
        .collect();
    (!before && !violations.concerns("events")).then_some(choices)
}

pub async fn create(
    State(state): State<AppState>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<(StatusCode, Json<Single>)> {
    let directory = state.directory();
    let mut book = state.notifications();
    let checked = check(
        &state,
        &directory,
        &book,
        &body.attributes,
        &body.attributes,
    )?;
    let subscription = Subscription {
        stamp: Stamp::now(),
        events: checked.events,
        publisher_type: checked.publisher_type,
        publisher_id: checked.publisher_id,
        subscriber_type: checked.subscriber_type,
        subscriber_id: checked.subscriber_id,
    };
    let data = subscription.resource(&base);
    book.subscriptions.push(subscription);
    Ok((StatusCode::CREATED, Json(Single { data })))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<Json<Single>> {
    let id = resource_id(&id)?;
    let directory = state.directory();
    let mut book = state.notifications();
    let mut merged = Subscription::find(&book, id)
        .ok_or_else(ApiError::not_found)?
        .settable();
    merged.extend(body.attributes.clone());
    let checked = check(&state, &directory, &book, &merged, &body.attributes)?;
    let subscription = book
        .subscriptions
        .iter_mut()
        .find(|s| s.stamp.id == id)
        .expect("found above");
    subscription.events = checked.events;
    subscription.publisher_type = checked.publisher_type;
    subscription.publisher_id = checked.publisher_id;
    subscription.subscriber_type = checked.subscriber_type;
    subscription.subscriber_id = checked.subscriber_id;
    subscription.stamp.touch();
    Ok(Json(Single {
        data: subscription.resource(&base),
    }))
}
