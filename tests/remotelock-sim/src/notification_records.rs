//! The account's notification setup (remotelock-api.md §3.9): subscribers, subscriptions and
//! the notifications delivered. They are listed, shown (and the first two deleted) alike, so
//! those handlers are written once here over [`Record`] and [`Deletable`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::envelope::{ApiBase, Collection, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult};
use crate::listing::{ListQuery, ListSpec};
use crate::notification_subscribers::Subscriber;
use crate::notification_subscriptions::Subscription;
use crate::notifications::Notification;
use crate::state::AppState;

#[derive(Debug, Default)]
pub struct NotificationBook {
    /// In creation order.
    pub subscribers: Vec<Subscriber>,
    pub subscriptions: Vec<Subscription>,
    pub delivered: Vec<Notification>,
}

impl NotificationBook {
    pub fn subscriber(&self, id: Uuid) -> Option<&Subscriber> {
        Subscriber::find(self, id)
    }

    pub fn subscriber_mut(&mut self, id: Uuid) -> Option<&mut Subscriber> {
        self.subscribers.iter_mut().find(|s| s.stamp.id == id)
    }
}

/// What every record has: its id and when it was made and last changed.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Stamp {
    /// A new record, made now.
    pub fn now() -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::new_v4(),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn touch(&mut self) {
        self.updated_at = Utc::now();
    }
}

/// A kind of record kept in the [`NotificationBook`] and served as a REST collection.
pub trait Record: Sized + 'static {
    const LIST: ListSpec;
    /// The collection's path, e.g. `/notification_subscribers`.
    const PATH: &'static str;

    fn stamp(&self) -> &Stamp;
    /// The resource `type`.
    fn kind(&self) -> &'static str;
    /// Every attribute but the timestamps.
    fn attributes(&self) -> Map<String, Value>;
    /// Relationship links: (name, path).
    fn links(&self) -> Vec<(&'static str, String)>;
    fn all(book: &NotificationBook) -> &[Self];

    fn find(book: &NotificationBook, id: Uuid) -> Option<&Self> {
        Self::all(book).iter().find(|r| r.stamp().id == id)
    }

    /// The resource, sortable by its exact creation time.
    fn resource(&self, base: &ApiBase) -> Resource {
        let Stamp {
            id,
            created_at,
            updated_at,
        } = *self.stamp();
        let mut attributes = self.attributes();
        attributes.insert("created_at".into(), json!(timestamp(created_at)));
        attributes.insert("updated_at".into(), json!(timestamp(updated_at)));
        let self_link = base.url(format_args!("{}/{id}", Self::PATH));
        self.links().into_iter().fold(
            Resource::new(self.kind(), id, Value::Object(attributes), self_link)
                .sorted_by_time("created_at", created_at),
            |resource, (name, path)| resource.link(name, base.url(path)),
        )
    }
}

/// A record clients may delete.
pub trait Deletable: Record {
    /// Removes the record (and what only it gave meaning to); `false` when unknown.
    fn remove(book: &mut NotificationBook, id: Uuid) -> bool;
}

pub async fn list<R: Record>(
    State(state): State<AppState>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let all = R::all(&state.notifications())
        .iter()
        .map(|r| r.resource(&base))
        .collect();
    query.apply(&R::LIST, all).map(Json)
}

pub async fn show<R: Record>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let book = state.notifications();
    let record = R::find(&book, resource_id(&id)?).ok_or_else(ApiError::not_found)?;
    Ok(Json(Single {
        data: record.resource(&base),
    }))
}

pub async fn delete<R: Deletable>(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if R::remove(&mut state.notifications(), resource_id(&id)?) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
