//! `POST`/`PUT /notification_subscribers` (remotelock-api.md §3.9): who gets notified, by
//! e-mail, text message or webhook. Required attributes are refused when missing (422);
//! webhook URLs must be HTTPS and `content_type` is `form` (the default) or `json`.
//! Validation messages are ours (the docs list none). Listing, showing and deleting are
//! `notification_records`'.

use std::fmt;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use url::Url;
use uuid::Uuid;

use crate::envelope::{ApiBase, RequestBody, Single, resource_id};
use crate::errors::{ApiError, ApiResult, Violations};
use crate::listing::ListSpec;
use crate::notification_records::{Deletable, NotificationBook, Record, Stamp};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberType {
    Email,
    Text,
    Webhook,
}

impl SubscriberType {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "email_notification_subscriber" => Some(Self::Email),
            "text_notification_subscriber" => Some(Self::Text),
            "webhook_notification_subscriber" => Some(Self::Webhook),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email_notification_subscriber",
            Self::Text => "text_notification_subscriber",
            Self::Webhook => "webhook_notification_subscriber",
        }
    }
}

/// How a webhook's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// The documented default; its encoding is undocumented (we send Rails-style nested
    /// form fields).
    Form,
    Json,
}

impl ContentType {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "form" => Some(Self::Form),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Form => "form",
            Self::Json => "json",
        }
    }
}

/// Sent back as `X-Secret`; never in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub String);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

#[derive(Debug, Clone)]
pub enum Channel {
    Email {
        email: String,
    },
    Text {
        phone: String,
        carrier: String,
    },
    Webhook {
        url: Url,
        content_type: ContentType,
        secret: Option<WebhookSecret>,
    },
}

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub stamp: Stamp,
    pub name: String,
    pub active: bool,
    pub channel: Channel,
}

impl Subscriber {
    pub fn subscriber_type(&self) -> SubscriberType {
        match self.channel {
            Channel::Email { .. } => SubscriberType::Email,
            Channel::Text { .. } => SubscriberType::Text,
            Channel::Webhook { .. } => SubscriberType::Webhook,
        }
    }

    pub fn id(&self) -> Uuid {
        self.stamp.id
    }

    /// The attributes a client can set, as they stand.
    fn settable(&self) -> Map<String, Value> {
        let channel = match &self.channel {
            Channel::Email { email } => vec![("email", json!(email))],
            Channel::Text { phone, carrier } => {
                vec![("phone", json!(phone)), ("carrier", json!(carrier))]
            }
            Channel::Webhook {
                url,
                content_type,
                secret,
            } => vec![
                ("url", json!(url.as_str())),
                ("content_type", json!(content_type.as_str())),
                ("secret", json!(secret.as_ref().map(|s| s.0.as_str()))),
            ],
        };
        [("name", json!(self.name)), ("active", json!(self.active))]
            .into_iter()
            .chain(channel)
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }
}

impl Record for Subscriber {
    const LIST: ListSpec = ListSpec {
        sortable: &["created_at", "name"],
        default_sort: "created_at",
    };
    const PATH: &'static str = "/notification_subscribers";

    fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    fn kind(&self) -> &'static str {
        self.subscriber_type().as_str()
    }

    fn attributes(&self) -> Map<String, Value> {
        self.settable()
    }

    fn links(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn all(book: &NotificationBook) -> &[Self] {
        &book.subscribers
    }
}

impl Deletable for Subscriber {
    /// Its subscriptions go with it.
    fn remove(book: &mut NotificationBook, id: Uuid) -> bool {
        let before = book.subscribers.len();
        book.subscribers.retain(|s| s.id() != id);
        book.subscriptions.retain(|s| s.subscriber_id != id);
        book.subscribers.len() < before
    }
}

/// A subscriber as `attributes` describe it: name, active, channel.
fn parse(
    kind: SubscriberType,
    attributes: &Map<String, Value>,
) -> ApiResult<(String, bool, Channel)> {
    let mut violations = Violations::default();
    let mut text = |name: &str, required: bool| violations.text(attributes, name, required);
    let name = text("name", true);
    let channel = match kind {
        SubscriberType::Email => match text("email", true) {
            Some(email) if email.contains('@') => Some(Channel::Email { email }),
            Some(_) => {
                violations.on("email", "is invalid");
                None
            }
            None => None,
        },
        SubscriberType::Text => {
            let (phone, carrier) = (text("phone", true), text("carrier", true));
            phone
                .zip(carrier)
                .map(|(phone, carrier)| Channel::Text { phone, carrier })
        }
        SubscriberType::Webhook => {
            let url = text("url", true);
            let content_type = text("content_type", false);
            let secret = text("secret", false).map(WebhookSecret);
            let url = url.and_then(|raw| match Url::parse(&raw) {
                Ok(url) if url.scheme() == "https" && url.host().is_some() => Some(url),
                _ => {
                    violations.on("url", "must be an HTTPS URL");
                    None
                }
            });
            let content_type = match content_type.as_deref().map(ContentType::parse) {
                None => Some(ContentType::Form),
                Some(Some(content_type)) => Some(content_type),
                Some(None) => {
                    violations.on("content_type", "is not included in the list");
                    None
                }
            };
            url.zip(content_type)
                .map(|(url, content_type)| Channel::Webhook {
                    url,
                    content_type,
                    secret,
                })
        }
    };
    let active = match attributes.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(active)) => *active,
        Some(_) => {
            violations.on("active", "is invalid");
            true
        }
    };
    violations.into_result(attributes)?;
    let (name, channel) = name.zip(channel).expect("no violations, so both parsed");
    Ok((name, active, channel))
}

pub async fn create(
    State(state): State<AppState>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<(StatusCode, Json<Single>)> {
    let attributes = &body.attributes;
    let kind = body.required_type(SubscriberType::parse)?;
    let (name, active, channel) = parse(kind, attributes)?;
    let subscriber = Subscriber {
        stamp: Stamp::now(),
        name,
        active,
        channel,
    };
    let data = subscriber.resource(&base);
    state.notifications().subscribers.push(subscriber);
    Ok((StatusCode::CREATED, Json(Single { data })))
}

/// Any attribute of the create may change (e.g. `active`); the type may not.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
    body: RequestBody,
) -> ApiResult<Json<Single>> {
    let id = resource_id(&id)?;
    let mut book = state.notifications();
    let subscriber = book.subscriber_mut(id).ok_or_else(ApiError::not_found)?;
    let mut merged = subscriber.settable();
    merged.extend(body.attributes.clone());
    let (name, active, channel) =
        parse(subscriber.subscriber_type(), &merged).map_err(|error| match error {
            // Echo what was sent, not the merge.
            ApiError::Invalid { errors, .. } => ApiError::Invalid {
                attributes: body.attributes.clone(),
                errors,
            },
            other => other,
        })?;
    subscriber.name = name;
    subscriber.active = active;
    subscriber.channel = channel;
    subscriber.stamp.touch();
    Ok(Json(Single {
        data: subscriber.resource(&base),
    }))
}
