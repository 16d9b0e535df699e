//! Registering lockbridge's webhook with RemoteLock (remotelock-api.md §3.9): a webhook
//! subscriber (HTTPS URL, JSON, the secret it sends back as `X-Secret`) and an account-wide
//! subscription to the events lockbridge applies. Done once by an operator
//! (`lockbridge webhook register`), with the stored authorization: nobody else holds a token.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The events lockbridge applies (services/lock-provisioner/src/door_events.rs).
pub const EVENTS: [&str; 8] = [
    "access_person_synced",
    "access_person_sync_failed",
    "access_person_used",
    "unlocked",
    "access_denied",
    "connectivity",
    "power_level_low",
    "battery_replaced",
];

pub(crate) const SUBSCRIBER_TYPE: &str = "webhook_notification_subscriber";

/// A webhook subscriber as RemoteLock lists it. Its secret is not kept.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscriber {
    pub id: String,
    #[serde(rename = "type")]
    pub subscriber_type: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// A subscription as RemoteLock lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub subscriber_id: Option<String>,
    pub publisher_type: Option<String>,
}

/// What registering did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registered {
    /// A new subscriber and its subscription.
    Created,
    /// The subscriber for that URL existed: its secret set and made active, its subscription
    /// made again if it had none.
    Updated,
}

pub(crate) fn subscriber_body(url: &str, secret: &str) -> serde_json::Value {
    json!({"type": SUBSCRIBER_TYPE, "attributes": {
        "name": "lockbridge", "url": url, "content_type": "json", "secret": secret, "active": true}})
}

pub(crate) fn subscription_body(account_id: &str, subscriber_id: &str) -> serde_json::Value {
    let events: Vec<_> = EVENTS.iter().map(|e| json!({"event_type": e})).collect();
    json!({"attributes": {"events": events, "publisher_type": "account", "publisher_id": account_id,
        "subscriber_type": SUBSCRIBER_TYPE, "subscriber_id": subscriber_id}})
}
