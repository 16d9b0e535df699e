//! Notifications (remotelock-api.md §3.9): subscriber and subscription validation, webhook
//! delivery with `X-Secret` to a real local HTTP server behind a TLS route, the retry schedule
//! and deactivation, an outage (pause/resume), duplicate delivery and `GET /notifications`.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Api, body, id};
use remotelock_sim::{AttemptOutcome, SimConfig, TlsRoute};
use reqwest::{Method, Response};
use serde_json::{Value, json};

const HOOK_HOST: &str = "hooks.lockbridge.test";
const HOOK_URL: &str = "https://hooks.lockbridge.test/remotelock/events";
const SECRET: &str = "s3cr3t-shared-with-lockbridge";

/// How the receiver answers its next deliveries (then 200).
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Answers 200 after this long.
    Slow(Duration),
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A webhook receiver on a free loopback port, as lockbridge would serve behind its proxy.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let app = Router::new()
            .route("/remotelock/events", post(answer))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, addr)
    }

    fn then(&self, replies: &[Reply]) {
        self.script.lock().unwrap().extend(replies);
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn answer(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver
        .got
        .lock()
        .unwrap()
        .push(Received { headers, body });
    let reply = receiver.script.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Status(status)) => StatusCode::from_u16(status).unwrap(),
        Some(Reply::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    }
}

/// Polls `done` for up to 3 s.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Milliseconds for the whole six-retry schedule (about 7 days × 1e-6 ≈ 0.6 s).
fn fast_retries() -> SimConfig {
    SimConfig {
        webhook_retry_scale: 1e-6,
        ..SimConfig::default()
    }
}

impl Api {
    async fn post_subscriber(&self, kind: &str, attributes: Value) -> Response {
        self.send_json(
            Method::POST,
            "/notification_subscribers",
            json!({"type": kind, "attributes": attributes}),
        )
        .await
    }

    /// A webhook subscriber (JSON, with the secret) that must be created; returns its id.
    async fn webhook(&self, attributes: Value) -> String {
        let mut all = json!({"name": "lockbridge", "url": HOOK_URL, "content_type": "json", "secret": SECRET});
        all.as_object_mut()
            .unwrap()
            .extend(attributes.as_object().unwrap().clone());
        let created = self
            .post_subscriber("webhook_notification_subscriber", all)
            .await;
        assert_eq!(created.status(), 201);
        id(&body(created).await["data"]).to_owned()
    }

    async fn post_subscription(&self, attributes: Value) -> Response {
        self.send_json(
            Method::POST,
            "/notification_subscriptions",
            json!({"attributes": attributes}),
        )
        .await
    }

    /// Subscribes `subscriber` (a webhook) to `events` of the publisher; must succeed.
    async fn subscribe(
        &self,
        subscriber: &str,
        publisher: (&str, &str),
        events: &[&str],
    ) -> String {
        let events: Vec<Value> = events.iter().map(|e| json!({"event_type": e})).collect();
        let created = self
            .post_subscription(json!({
                "events": events,
                "publisher_type": publisher.0, "publisher_id": publisher.1,
                "subscriber_type": "webhook_notification_subscriber", "subscriber_id": subscriber,
            }))
            .await;
        assert_eq!(created.status(), 201);
        id(&body(created).await["data"]).to_owned()
    }

    async fn subscriber_active(&self, subscriber: &str) -> bool {
        let shown = body(
            self.get(&format!("/notification_subscribers/{subscriber}"))
                .await,
        )
        .await;
        shown["data"]["attributes"]["active"].as_bool().unwrap()
    }

    /// A simulator whose `hooks.lockbridge.test` webhooks reach a fresh receiver.
    async fn with_receiver(config: SimConfig) -> (Self, Receiver) {
        let (receiver, addr) = Receiver::start().await;
        let api = Self::start_with(SimConfig {
            webhook_tls_routes: vec![TlsRoute::parse(&format!("{HOOK_HOST}={addr}")).unwrap()],
            ..config
        })
        .await;
        (api, receiver)
    }
}

/// The 422's `(attribute, messages)`.
async fn errors(response: Response) -> Vec<(Value, Value)> {
    assert_eq!(response.status(), 422);
    body(response).await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["attribute"].clone(), e["messages"].clone()))
        .collect()
}

#[tokio::test]
async fn subscribers_refuse_what_the_docs_require_and_keep_nothing() {
    let api = Api::start().await;
    let untyped = api
        .send_json(
            Method::POST,
            "/notification_subscribers",
            json!({"attributes": {"name": "x", "email": "a@b.example"}}),
        )
        .await;
    assert_eq!(
        errors(untyped).await,
        [(json!("type"), json!(["can't be blank"]))]
    );
    let unknown = api.post_subscriber("pager_notification_subscriber", json!({"name": "x"}));
    assert_eq!(
        errors(unknown.await).await,
        [(json!("type"), json!(["is not included in the list"]))]
    );
    for (kind, attributes, expected) in [
        (
            "webhook_notification_subscriber",
            json!({"name": "hook"}),
            vec![(json!("url"), json!(["can't be blank"]))],
        ),
        (
            "webhook_notification_subscriber",
            json!({"name": "hook", "url": "http://hooks.example/x"}),
            vec![(json!("url"), json!(["must be an HTTPS URL"]))],
        ),
        (
            "webhook_notification_subscriber",
            json!({"name": "hook", "url": HOOK_URL, "content_type": "xml", "active": "yes"}),
            vec![
                (
                    json!("content_type"),
                    json!(["is not included in the list"]),
                ),
                (json!("active"), json!(["is invalid"])),
            ],
        ),
        (
            "email_notification_subscriber",
            json!({"email": "facilities"}),
            vec![
                (json!("name"), json!(["can't be blank"])),
                (json!("email"), json!(["is invalid"])),
            ],
        ),
        (
            "text_notification_subscriber",
            json!({"name": "On call", "phone": "+12125550100"}),
            vec![(json!("carrier"), json!(["can't be blank"]))],
        ),
    ] {
        let refused = api.post_subscriber(kind, attributes.clone()).await;
        assert_eq!(errors(refused).await, expected, "{attributes}");
    }
    let list = body(api.get("/notification_subscribers").await).await;
    assert_eq!(list["meta"]["total_count"], 0);

    // The documented defaults; the secret is what the subscriber said.
    let created = api
        .post_subscriber(
            "webhook_notification_subscriber",
            json!({"name": "Zed hook", "url": HOOK_URL, "secret": SECRET}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let hook = body(created).await["data"].clone();
    assert_eq!(hook["type"], "webhook_notification_subscriber");
    assert_eq!(hook["attributes"]["content_type"], "form");
    assert_eq!(hook["attributes"]["active"], true);
    assert_eq!(hook["attributes"]["secret"], SECRET);
    let email = api
        .post_subscriber(
            "email_notification_subscriber",
            json!({"name": "Alpha desk", "email": "desk@riverside.example"}),
        )
        .await;
    assert_eq!(email.status(), 201);
    let text = api
        .post_subscriber(
            "text_notification_subscriber",
            json!({"name": "Mid pager", "phone": "+12125550100", "carrier": "att", "active": false}),
        )
        .await;
    assert_eq!(body(text).await["data"]["attributes"]["active"], false);

    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["attributes"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_name = body(api.get("/notification_subscribers?sort=name").await).await;
    assert_eq!(names(&by_name), ["Alpha desk", "Mid pager", "Zed hook"]);
    let default = body(api.get("/notification_subscribers").await).await;
    assert_eq!(names(&default), ["Zed hook", "Alpha desk", "Mid pager"]);
    let hooks = body(
        api.get("/notification_subscribers?type=webhook_notification_subscriber")
            .await,
    )
    .await;
    assert_eq!(names(&hooks), ["Zed hook"]);

    // Updates: any attribute, validated as on create; a refusal changes nothing.
    let path = format!("/notification_subscribers/{}", id(&hook));
    let off = api
        .send_json(Method::PUT, &path, json!({"attributes": {"active": false}}))
        .await;
    assert_eq!(off.status(), 200);
    let off = body(off).await["data"]["attributes"].clone();
    assert_eq!(
        (off["active"].clone(), off["url"].clone()),
        (json!(false), json!(HOOK_URL))
    );
    let refused = api
        .send_json(
            Method::PUT,
            &path,
            json!({"attributes": {"url": "http://x.example"}}),
        )
        .await;
    let refused = body(refused).await;
    assert_eq!(refused["attributes"], json!({"url": "http://x.example"}));
    let shown = body(api.get(&path).await).await;
    assert_eq!(shown["data"]["attributes"]["url"], HOOK_URL);

    assert_eq!(api.delete(&path).await.status(), 204);
    assert_eq!(api.get(&path).await.status(), 404);
    assert_eq!(api.delete(&path).await.status(), 404);
}

#[tokio::test]
async fn subscriptions_check_events_against_their_publisher_and_that_both_ends_exist() {
    let api = Api::start().await;
    let seed = api.sim.seed();
    let lock = seed.locks[0].id.clone();
    let hook = api.webhook(json!({})).await;
    let guest = api.guest("Ada", "4821").await;
    let with = |changes: Value| {
        let mut attributes = json!({
            "events": [{"event_type": "unlocked"}],
            "publisher_type": "lock", "publisher_id": lock,
            "subscriber_type": "webhook_notification_subscriber", "subscriber_id": hook,
        });
        attributes
            .as_object_mut()
            .unwrap()
            .extend(changes.as_object().unwrap().clone());
        attributes
    };

    for (changes, expected) in [
        (
            json!({"events": [], "publisher_type": null, "subscriber_id": ""}),
            vec![
                (json!("events"), json!(["can't be blank"])),
                (json!("publisher_type"), json!(["can't be blank"])),
                (json!("subscriber_id"), json!(["can't be blank"])),
            ],
        ),
        (
            json!({"events": [{"event_type": "exploded"}], "subscriber_type": "fax"}),
            vec![
                (json!("events"), json!(["has an unknown event_type"])),
                (
                    json!("subscriber_type"),
                    json!(["is not included in the list"]),
                ),
            ],
        ),
        (
            json!({"events": [{"event_type": "access_person_used"}]}),
            vec![(
                json!("events"),
                json!(["access_person_used is not published by lock"]),
            )],
        ),
        (
            json!({"events": [{"event_type": "unlocked", "first_access": true}]}),
            vec![(
                json!("events"),
                json!(["first_access is only for access_person_used"]),
            )],
        ),
        (
            json!({"publisher_type": "access_guest", "publisher_id": id(&guest)}),
            vec![(
                json!("events"),
                json!(["unlocked is not published by access_guest"]),
            )],
        ),
    ] {
        let refused = api.post_subscription(with(changes.clone())).await;
        assert_eq!(errors(refused).await, expected, "{changes}");
    }
    let unknown = "00000000-0000-4000-8000-000000000000";
    for changes in [
        json!({"publisher_id": unknown}),
        json!({"subscriber_id": unknown}),
        json!({"publisher_type": "location", "publisher_id": lock}),
        json!({"publisher_type": "thermostat", "publisher_id": lock}),
        json!({"subscriber_type": "email_notification_subscriber"}),
    ] {
        let refused = api.post_subscription(with(changes.clone())).await;
        assert_eq!(refused.status(), 404, "{changes}");
    }
    let none = body(api.get("/notification_subscriptions").await).await;
    assert_eq!(none["meta"]["total_count"], 0);

    // Accounts and locations take any event; a person only its use, with first_access.
    for changes in [
        json!({}),
        json!({"publisher_type": "account", "publisher_id": seed.account_id,
               "events": [{"event_type": "access_person_used"}, {"event_type": "jammed"}]}),
        json!({"publisher_type": "location", "publisher_id": seed.locations[0].id,
               "events": [{"event_type": "humidity_changed"}]}),
        json!({"publisher_type": "access_guest", "publisher_id": id(&guest),
               "events": [{"event_type": "access_person_used", "first_access": true}]}),
    ] {
        let created = api.post_subscription(with(changes.clone())).await;
        assert_eq!(created.status(), 201, "{changes}");
    }
    let all = body(api.get("/notification_subscriptions").await).await;
    assert_eq!(all["meta"]["total_count"], 4);
    let first = &all["data"][0];
    assert_eq!(first["type"], "notification_subscription");
    assert_eq!(
        first["attributes"]["events"],
        json!([{"event_type": "unlocked"}])
    );
    assert_eq!(
        all["data"][3]["attributes"]["events"],
        json!([{"event_type": "access_person_used", "first_access": true}])
    );

    let path = format!("/notification_subscriptions/{}", id(first));
    let changed = api
        .send_json(
            Method::PUT,
            &path,
            json!({"attributes": {"events": [{"event_type": "locked"}, {"event_type": "jammed"}]}}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let refused = api
        .send_json(
            Method::PUT,
            &path,
            json!({"attributes": {"events": [{"event_type": "access_person_used"}]}}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let shown = body(api.get(&path).await).await;
    assert_eq!(
        shown["data"]["attributes"]["events"][1]["event_type"],
        "jammed"
    );
    assert_eq!(api.delete(&path).await.status(), 204);
    assert_eq!(api.get(&path).await.status(), 404);

    // A subscriber takes its subscriptions with it.
    let subscriber = format!("/notification_subscribers/{hook}");
    assert_eq!(api.delete(&subscriber).await.status(), 204);
    let left = body(api.get("/notification_subscriptions").await).await;
    assert_eq!(left["meta"]["total_count"], 0);
}

#[tokio::test]
async fn events_reach_webhooks_with_the_secret_and_are_listed_as_notifications() {
    let (api, receiver) = Api::with_receiver(SimConfig::default()).await;
    let seed = api.sim.seed();
    let lock = seed.locks[0].id.clone();
    let hook = api.webhook(json!({})).await;
    api.subscribe(&hook, ("lock", &lock), &["unlocked", "power_level_low"])
        .await;
    // An e-mail subscriber hears of everything in the account; an inactive one of nothing.
    let email = api
        .post_subscriber(
            "email_notification_subscriber",
            json!({"name": "Desk", "email": "desk@riverside.example"}),
        )
        .await;
    let email = id(&body(email).await["data"]).to_owned();
    let asleep = api
        .webhook(json!({"name": "asleep", "active": false}))
        .await;
    for subscriber in [
        (&email, "email_notification_subscriber"),
        (&asleep, "webhook_notification_subscriber"),
    ] {
        let created = api
            .post_subscription(json!({
                "events": [{"event_type": "unlocked"}, {"event_type": "access_person_used"}],
                "publisher_type": "account", "publisher_id": seed.account_id,
                "subscriber_type": subscriber.1, "subscriber_id": subscriber.0,
            }))
            .await;
        assert_eq!(created.status(), 201);
    }

    let guest = api.guest("Ada", "4821").await;
    api.grant_lock(&guest, &lock).await; // synced: not subscribed
    let answer = api.sim.enter_pin(&lock, "4821"); // upcoming: access_person_used failed
    assert!(!answer.opened);
    let low = api.sim.set_power_level(&lock, 12)[0].clone();
    eventually("one webhook delivery", || !receiver.got().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(100)).await; // nothing else comes
    let got = receiver.got();
    assert_eq!(
        got.len(),
        1,
        "only power_level_low reaches the lock subscription"
    );
    let delivery = &got[0];
    assert_eq!(delivery.header("x-secret"), Some(SECRET));
    assert_eq!(delivery.header("host"), Some(HOOK_HOST));
    assert!(
        delivery
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let payload = delivery.json();
    let shown = body(api.get(&format!("/events/{low}")).await).await;
    assert_eq!(
        payload, shown,
        "the event as /events shows it, as one object"
    );
    assert_eq!(payload["data"]["type"], "power_level_low_event");

    let notifications = body(api.get("/notifications").await).await;
    let delivered: Vec<(String, String, String)> = notifications["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let a = &n["attributes"];
            let text = |name: &str| a[name].as_str().unwrap().to_owned();
            (
                text("subscriber_id"),
                text("publisher_type"),
                text("event_id"),
            )
        })
        .collect();
    let used = &answer.event_ids[0];
    assert_eq!(
        delivered,
        [
            (email.clone(), "access_guest".to_owned(), used.clone()),
            (hook.clone(), "lock".to_owned(), low.clone()),
        ]
    );
    let webhook_notification = &notifications["data"][1]["attributes"];
    assert_eq!(
        webhook_notification["subscriber_type"],
        "webhook_notification_subscriber"
    );
    assert_eq!(webhook_notification["publisher_id"], lock.as_str());
    assert!(
        api.sim
            .webhook_attempts()
            .iter()
            .all(|a| a.subscriber_id != asleep)
    );
}

#[tokio::test]
async fn form_webhooks_get_rails_style_fields_and_first_access_only_the_first_use() {
    let (api, receiver) = Api::with_receiver(SimConfig::default()).await;
    let lock = api.sim.seed().locks[0].id.clone();
    let hook = api
        .webhook(json!({"content_type": "form", "secret": null}))
        .await;
    let local = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::New_York)
        .naive_local();
    let window = |hours: i64| {
        (local + chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let created = api
        .create_guest(
            json!({"name": "Ada", "pin": "4821", "starts_at": window(-1), "ends_at": window(1)}),
        )
        .await;
    let guest = body(created).await["data"].clone();
    api.grant_lock(&guest, &lock).await;
    let created = api
        .post_subscription(json!({
            "events": [{"event_type": "access_person_used", "first_access": true}],
            "publisher_type": "access_guest", "publisher_id": id(&guest),
            "subscriber_type": "webhook_notification_subscriber", "subscriber_id": hook,
        }))
        .await;
    assert_eq!(created.status(), 201);

    assert!(api.sim.enter_pin(&lock, "4821").opened);
    assert!(api.sim.enter_pin(&lock, "4821").opened);
    eventually("the first use", || !receiver.got().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1, "first_access: the second use is not sent");
    let delivery = &got[0];
    assert_eq!(delivery.header("x-secret"), None, "no secret, no header");
    assert_eq!(
        delivery.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&delivery.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("data[type]"), Some("access_person_used_event"));
    assert_eq!(field("data[attributes][status]"), Some("succeeded"));
    assert_eq!(field("data[attributes][publisher_id]"), Some(id(&guest)));
}

#[tokio::test]
async fn failing_webhooks_are_retried_on_the_schedule_then_the_subscriber_is_deactivated() {
    let (api, receiver) = Api::with_receiver(fast_retries()).await;
    let lock = api.sim.seed().locks[0].id.clone();
    let hook = api.webhook(json!({})).await;
    api.subscribe(&hook, ("lock", &lock), &["power_level_low"])
        .await;
    receiver.then(&[Reply::Status(500); 7]);
    let event = api.sim.set_power_level(&lock, 10)[0].clone();

    eventually("seven attempts", || api.sim.webhook_attempts().len() == 7).await;
    let attempts = api.sim.webhook_attempts();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert!(
        attempts
            .iter()
            .all(|a| a.event_id == event && a.outcome == AttemptOutcome::Answered { status: 500 })
    );
    // The first retry waits its minute (60 µs here), each later one longer.
    let gaps: Vec<chrono::Duration> = attempts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[5] > gaps[0], "{gaps:?}");
    tokio::time::sleep(Duration::from_millis(50)).await; // it deactivates right after
    assert!(!api.subscriber_active(&hook).await);
    let notifications = body(api.get("/notifications").await).await;
    assert_eq!(notifications["meta"]["total_count"], 0);

    // Deactivated: later events are not sent.
    api.sim.set_power_level(&lock, 9);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.got().len(), 7);
}

#[tokio::test]
async fn a_webhook_that_recovers_or_answers_late_is_delivered_on_a_retry() {
    let (api, receiver) = Api::with_receiver(SimConfig {
        webhook_timeout: Duration::from_millis(200),
        ..fast_retries()
    })
    .await;
    let lock = api.sim.seed().locks[0].id.clone();
    let hook = api.webhook(json!({})).await;
    api.subscribe(
        &hook,
        ("lock", &lock),
        &["power_level_low", "battery_replaced"],
    )
    .await;
    receiver.then(&[Reply::Status(503), Reply::Slow(Duration::from_millis(600))]);
    api.sim.set_power_level(&lock, 10);
    eventually("a delivery", || accepted_deliveries(&api) == 1).await;
    let outcomes: Vec<AttemptOutcome> = api
        .sim
        .webhook_attempts()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Answered { status: 503 },
            AttemptOutcome::TimedOut,
            AttemptOutcome::Answered { status: 200 },
        ]
    );
    assert!(api.subscriber_active(&hook).await);

    // A route to a closed port: unreachable, retried like the rest.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let route = |route: &str| {
        api.control(
            Method::POST,
            "/_sim/webhooks/routes",
            json!({ "route": route }),
        )
    };
    let added = route(&format!("nowhere.lockbridge.test={closed_addr}")).await;
    assert_eq!(added.status(), 204);
    assert_eq!(route("nowhere").await.status(), 400);
    let nowhere = api
        .webhook(
            json!({"name": "gone", "url": "https://nowhere.lockbridge.test/remotelock/events"}),
        )
        .await;
    api.subscribe(&nowhere, ("lock", &lock), &["battery_replaced"])
        .await;
    api.sim.set_power_level(&lock, 100);
    eventually("the unreachable hook's attempts", || {
        api.sim
            .webhook_attempts()
            .iter()
            .filter(|a| a.subscriber_id == nowhere)
            .count()
            == 7
    })
    .await;
    let over_http = api.control_get("/_sim/webhooks/attempts").await;
    let last = over_http.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["subscriber_id"], nowhere.as_str());
    assert_eq!(last["outcome"], "unreachable");
    assert_eq!(last["attempt"], 7);
}

/// Deliveries the receiver answered with 200.
fn accepted_deliveries(api: &Api) -> usize {
    api.sim
        .webhook_attempts()
        .iter()
        .filter(|a| a.outcome == AttemptOutcome::Answered { status: 200 })
        .count()
}

#[tokio::test]
async fn an_outage_holds_deliveries_until_it_ends() {
    let (api, receiver) = Api::with_receiver(fast_retries()).await;
    let lock = api.sim.seed().locks[0].id.clone();
    let hook = api.webhook(json!({})).await;
    api.subscribe(&hook, ("lock", &lock), &["power_level_low"])
        .await;
    let paused = api
        .control(Method::POST, "/_sim/webhooks/pause", json!({}))
        .await;
    assert_eq!(paused.status(), 204);
    let events = [
        api.sim.set_power_level(&lock, 10)[0].clone(),
        api.sim.set_power_level(&lock, 9)[0].clone(),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.got().is_empty());
    assert!(api.sim.webhook_attempts().is_empty(), "not even retries");

    let resumed = api
        .control(Method::POST, "/_sim/webhooks/resume", json!({}))
        .await;
    assert_eq!(resumed.status(), 204);
    eventually("both events", || receiver.got().len() == 2).await;
    let mut delivered: Vec<String> = receiver
        .got()
        .iter()
        .map(|r| r.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    let mut expected = events.to_vec();
    expected.sort();
    assert_eq!(delivered, expected);
    assert!(api.subscriber_active(&hook).await);
}

#[tokio::test]
async fn at_least_once_delivery_sends_each_event_twice() {
    let (api, receiver) = Api::with_receiver(SimConfig {
        webhook_deliver_twice: true,
        ..SimConfig::default()
    })
    .await;
    let lock = api.sim.seed().locks[0].id.clone();
    let hook = api.webhook(json!({})).await;
    api.subscribe(&hook, ("lock", &lock), &["power_level_low"])
        .await;
    let event = api.sim.set_power_level(&lock, 10)[0].clone();
    eventually("two copies", || receiver.got().len() == 2).await;
    let copies: Vec<Value> = receiver.got().iter().map(Received::json).collect();
    assert_eq!(copies[0], copies[1]);
    assert_eq!(copies[0]["data"]["id"], event.as_str());
    let duplicates: Vec<bool> = api
        .sim
        .webhook_attempts()
        .iter()
        .map(|a| a.duplicate)
        .collect();
    assert_eq!(duplicates, [false, true]);
    let notifications = body(api.get("/notifications").await).await;
    assert_eq!(
        notifications["meta"]["total_count"], 1,
        "one notification, sent twice"
    );
}
