//! `GET /notifications` (remotelock-api.md §3.9): the notifications delivered, one per event
//! and subscriber (a webhook's once it answered 2xx; e-mail and text ones when the event is
//! recorded, as the simulator sends those nowhere). Listed by `notification_records`.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::events::Event;
use crate::listing::ListSpec;
use crate::notification_records::{NotificationBook, Record, Stamp};
use crate::notification_subscribers::Subscriber;

#[derive(Debug, Clone)]
pub struct Notification {
    pub stamp: Stamp,
    pub subscriber_type: &'static str,
    pub subscriber_id: Uuid,
    pub publisher_type: &'static str,
    pub publisher_id: Uuid,
    pub event_id: Uuid,
}

impl Notification {
    /// `event` reached `subscriber` now.
    pub fn delivered(event: &Event, subscriber: &Subscriber) -> Self {
        let (publisher_type, publisher_id) = event.publisher();
        Self {
            stamp: Stamp::now(),
            subscriber_type: subscriber.subscriber_type().as_str(),
            subscriber_id: subscriber.id(),
            publisher_type,
            publisher_id,
            event_id: event.id,
        }
    }
}

impl Record for Notification {
    const LIST: ListSpec = ListSpec {
        sortable: &["created_at"],
        default_sort: "created_at",
    };
    const PATH: &'static str = "/notifications";

    fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    fn kind(&self) -> &'static str {
        "notification"
    }

    fn attributes(&self) -> Map<String, Value> {
        [
            ("subscriber_type", json!(self.subscriber_type)),
            ("subscriber_id", json!(self.subscriber_id)),
            ("publisher_type", json!(self.publisher_type)),
            ("publisher_id", json!(self.publisher_id)),
            ("event_id", json!(self.event_id)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    fn links(&self) -> Vec<(&'static str, String)> {
        vec![
            ("event", format!("/events/{}", self.event_id)),
            (
                "subscriber",
                format!("/notification_subscribers/{}", self.subscriber_id),
            ),
        ]
    }

    fn all(book: &NotificationBook) -> &[Self] {
        &book.delivered
    }
}
