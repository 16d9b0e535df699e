//! Notifying subscribers of events (remotelock-api.md §3.9). For each recorded event, every
//! active subscriber with a subscription that wants it is notified once. A webhook gets a
//! `POST` of `{"data": <the event as /events shows it>}` (JSON, or Rails-style nested form
//! fields for `content_type: "form"`, whose encoding is undocumented) with its secret in
//! `X-Secret`; it must answer 2xx within `webhook_timeout` (3 s). Otherwise it is retried
//! after 1 min, 1 h, 12 h, 1 d, 2 d and 3 d (plus the documented random 0–60 … 0–300 min),
//! all multiplied by `webhook_retry_scale`; after the sixth retry fails the subscriber is
//! deactivated (the account e-mail is not simulated).
//!
//! RemoteLock only accepts `https://` webhook URLs, and tests serve plain HTTP on loopback,
//! so [`TlsRoute`]s model a TLS-terminating proxy in front of the receiver: a subscriber URL
//! whose host and port have a route is delivered over HTTP to the route's address (with the
//! original `Host`); any other URL is called over real HTTPS.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::header::{CONTENT_TYPE, HOST};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use url::Url;
use uuid::Uuid;

use crate::envelope::ApiBase;
use crate::events::{Event, event_resource};
use crate::notification_subscribers::{Channel, ContentType, WebhookSecret};
use crate::notifications::Notification;
use crate::state::AppState;

/// After the first attempt: (base, largest random addition), in seconds.
const RETRY_SCHEDULE: [(u64, u64); 6] = [
    (60, 0),
    (3_600, 3_600),
    (12 * 3_600, 2 * 3_600),
    (24 * 3_600, 3 * 3_600),
    (2 * 24 * 3_600, 4 * 3_600),
    (3 * 24 * 3_600, 5 * 3_600),
];

/// `https://host[:port]` delivered as `http://to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRoute {
    pub host: String,
    /// 443 unless the subscriber URL names another.
    pub port: u16,
    pub to: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not HOST[:PORT]=ADDRESS:PORT")]
pub struct BadTlsRoute(String);

impl TlsRoute {
    /// `hooks.example=127.0.0.1:9000` or `hooks.example:8443=127.0.0.1:9000`.
    pub fn parse(raw: &str) -> Result<Self, BadTlsRoute> {
        let bad = || BadTlsRoute(raw.to_owned());
        let (from, to) = raw.trim().split_once('=').ok_or_else(bad)?;
        let to = to.trim().parse().map_err(|_| bad())?;
        let (host, port) = match from.trim().rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
            None => (from.trim(), 443),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            to,
        })
    }

    fn serves(&self, url: &Url) -> bool {
        url.scheme() == "https"
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == Some(self.port)
    }
}

impl fmt::Display for TlsRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}={}", self.host, self.port, self.to)
    }
}

/// How one `POST` ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Answered {
        status: u16,
    },
    TimedOut,
    /// No connection, or it broke before an answer.
    Unreachable,
}

impl AttemptOutcome {
    fn succeeded(&self) -> bool {
        matches!(self, Self::Answered { status } if (200..300).contains(status))
    }
}

/// One webhook `POST`, for tests.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookAttempt {
    pub subscriber_id: String,
    pub event_id: String,
    /// 1 for the first delivery, 2–7 for the retries.
    pub attempt: usize,
    /// The extra copy `webhook_deliver_twice` sends.
    pub duplicate: bool,
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    pub at: DateTime<Utc>,
}

pub struct Webhooks {
    sender: mpsc::UnboundedSender<Event>,
    /// Taken by the dispatcher when the simulator starts.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// An outage: nothing is sent while `true`.
    paused: watch::Sender<bool>,
    routes: Mutex<Vec<TlsRoute>>,
    attempts: Mutex<Vec<WebhookAttempt>>,
    http: reqwest::Client,
}

impl Webhooks {
    pub fn new(routes: Vec<TlsRoute>, timeout: Duration) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            paused: watch::Sender::new(false),
            routes: Mutex::new(routes),
            attempts: Mutex::default(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a TLS backend is compiled in"),
        }
    }

    /// Queues `event` for its subscribers.
    pub fn dispatch(&self, event: Event) {
        // Fails only once the dispatcher stopped, at shutdown.
        let _ = self.sender.send(event);
    }

    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn add_route(&self, route: TlsRoute) {
        lock(&self.routes).push(route);
    }

    pub fn attempts(&self) -> Vec<WebhookAttempt> {
        lock(&self.attempts).clone()
    }

    /// Where to send for `url`, and the `Host` to send with it when a route applies.
    fn destination(&self, url: &Url) -> (Url, Option<String>) {
        let routes = lock(&self.routes);
        let Some(route) = routes.iter().find(|r| r.serves(url)) else {
            return (url.clone(), None);
        };
        let mut routed = url.clone();
        // http with an IP and port is always a valid base for these setters.
        let _ = routed.set_scheme("http");
        let _ = routed.set_ip_host(route.to.ip());
        let _ = routed.set_port(Some(route.to.port()));
        let host = match url.port() {
            Some(port) => format!("{}:{port}", route.host),
            None => route.host.clone(),
        };
        (routed, Some(host))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("webhook state poisoned")
}

/// Runs until shutdown: notifies the subscribers of each event as it is recorded.
pub fn start(state: &AppState) {
    let Some(mut events) = lock(&state.webhooks.receiver).take() else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = state.shutdown.cancelled() => None,
            };
            let Some(event) = event else { break };
            notify(&state, &event);
        }
    });
}

/// What a webhook delivery needs of its subscriber, read afresh before each attempt.
struct Target {
    url: Url,
    content_type: ContentType,
    secret: Option<WebhookSecret>,
}

fn notify(state: &AppState, event: &Event) {
    let mut book = state.notifications();
    let wanted: Vec<Uuid> = book
        .subscriptions
        .iter()
        .filter(|s| s.wants(event))
        .map(|s| s.subscriber_id)
        .collect();
    // Once per subscriber, however many of its subscriptions want the event.
    let mut seen = Vec::new();
    for id in wanted {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let Some(subscriber) = book.subscriber(id).filter(|s| s.active) else {
            continue;
        };
        match subscriber.channel {
            Channel::Webhook { .. } => {
                let payload = json!({
                    "data": event_resource(event, &ApiBase::of_simulator(&state.base_url)),
                });
                tokio::spawn(deliver(state.clone(), event.clone(), id, payload));
            }
            Channel::Email { .. } | Channel::Text { .. } => {
                let delivered = Notification::delivered(event, subscriber);
                book.delivered.push(delivered);
            }
        }
    }
}

/// The subscriber's webhook while it exists and is active.
fn target(state: &AppState, subscriber: Uuid) -> Option<Target> {
    let book = state.notifications();
    match &book.subscriber(subscriber).filter(|s| s.active)?.channel {
        Channel::Webhook {
            url,
            content_type,
            secret,
        } => Some(Target {
            url: url.clone(),
            content_type: *content_type,
            secret: secret.clone(),
        }),
        Channel::Email { .. } | Channel::Text { .. } => None,
    }
}

async fn deliver(state: AppState, event: Event, subscriber: Uuid, payload: Value) {
    let scale = state.config.webhook_retry_scale;
    let waits =
        std::iter::once(Duration::ZERO).chain(RETRY_SCHEDULE.iter().map(|&(base, extra)| {
            let extra = rand::thread_rng().gen_range(0..=extra);
            Duration::from_secs(base + extra).mul_f64(scale)
        }));
    for (attempt, wait) in waits.enumerate() {
        let mut resumed = state.webhooks.paused.subscribe();
        tokio::select! {
            () = async {
                tokio::time::sleep(wait).await;
                // A closed channel cannot happen: `Webhooks` owns the sender.
                let _ = resumed.wait_for(|paused| !paused).await;
            } => {}
            () = state.shutdown.cancelled() => return,
        }
        let Some(target) = target(&state, subscriber) else {
            return;
        };
        let outcome = post(&state, &target, &payload).await;
        let succeeded = outcome.succeeded();
        record_attempt(&state, &event, subscriber, attempt + 1, false, outcome);
        if succeeded {
            {
                let mut book = state.notifications();
                if let Some(subscriber) = book.subscriber(subscriber) {
                    let delivered = Notification::delivered(&event, subscriber);
                    book.delivered.push(delivered);
                }
            }
            if state.config.webhook_deliver_twice {
                let outcome = post(&state, &target, &payload).await;
                record_attempt(&state, &event, subscriber, attempt + 1, true, outcome);
            }
            return;
        }
    }
    if let Some(subscriber) = state.notifications().subscriber_mut(subscriber) {
        subscriber.active = false;
        subscriber.stamp.touch();
    }
}

fn record_attempt(
    state: &AppState,
    event: &Event,
    subscriber: Uuid,
    attempt: usize,
    duplicate: bool,
    outcome: AttemptOutcome,
) {
    lock(&state.webhooks.attempts).push(WebhookAttempt {
        subscriber_id: subscriber.to_string(),
        event_id: event.id.to_string(),
        attempt,
        duplicate,
        outcome,
        at: Utc::now(),
    });
}

async fn post(state: &AppState, target: &Target, payload: &Value) -> AttemptOutcome {
    let (url, host) = state.webhooks.destination(&target.url);
    let mut request = state.webhooks.http.post(url);
    if let Some(host) = host {
        request = request.header(HOST, host);
    }
    if let Some(secret) = &target.secret {
        request = request.header("X-Secret", &secret.0);
    }
    request = match target.content_type {
        ContentType::Json => request.json(payload),
        ContentType::Form => request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_encoded(payload)),
    };
    match request.send().await {
        Ok(response) => AttemptOutcome::Answered {
            status: response.status().as_u16(),
        },
        Err(e) if e.is_timeout() => AttemptOutcome::TimedOut,
        Err(_) => AttemptOutcome::Unreachable,
    }
}

/// Rails-style nested fields: `data[attributes][status]=succeeded`, arrays as `key[]`, null
/// as an empty value.
fn form_encoded(payload: &Value) -> String {
    fn flatten(prefix: String, value: &Value, out: &mut url::form_urlencoded::Serializer<String>) {
        match value {
            Value::Object(fields) => {
                for (name, value) in fields {
                    let key = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}[{name}]")
                    };
                    flatten(key, value, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    flatten(format!("{prefix}[]"), item, out);
                }
            }
            Value::Null => {
                out.append_pair(&prefix, "");
            }
            Value::String(text) => {
                out.append_pair(&prefix, text);
            }
            other => {
                out.append_pair(&prefix, &other.to_string());
            }
        }
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    flatten(String::new(), payload, &mut out);
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_map_https_urls_to_local_http() {
        let route = TlsRoute::parse("Hooks.Example=127.0.0.1:9000").unwrap();
        assert_eq!(route.to_string(), "hooks.example:443=127.0.0.1:9000");
        let webhooks = Webhooks::new(vec![route], Duration::from_secs(3));
        let (to, host) = webhooks.destination(&"https://hooks.example/rl?x=1".parse().unwrap());
        assert_eq!(to.as_str(), "http://127.0.0.1:9000/rl?x=1");
        assert_eq!(host.as_deref(), Some("hooks.example"));
        // Another port, or plain http, is not what the route terminates.
        for other in ["https://hooks.example:8443/rl", "https://other.example/rl"] {
            let url: Url = other.parse().unwrap();
            assert_eq!(webhooks.destination(&url), (url, None));
        }
        assert!(TlsRoute::parse("hooks.example:x=127.0.0.1:9000").is_err());
    }

    #[test]
    fn form_encoding_nests_like_rails() {
        let payload = json!({"data": {"type": "unlocked_event", "attributes": {
            "status": "succeeded", "pin": null, "power_level": 3, "list": ["a", "b"]
        }}});
        let encoded = form_encoded(&payload);
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(encoded.as_bytes())
            .into_owned()
            .collect();
        pairs.sort();
        let expected = [
            ("data[attributes][list][]", "a"),
            ("data[attributes][list][]", "b"),
            ("data[attributes][pin]", ""),
            ("data[attributes][power_level]", "3"),
            ("data[attributes][status]", "succeeded"),
            ("data[type]", "unlocked_event"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
    }
}
