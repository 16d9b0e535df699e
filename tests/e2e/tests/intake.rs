//! booking-intake over real HTTP, against real PostgreSQL and RabbitMQ: the contract of
//! design §3.1 and §3.2, and every kind of bad input refused with nothing stored or published.

use std::time::Duration;

use booking_intake::Application;
use lockbridge_e2e::{TestBroker, TestDatabase, intake_api::IntakeClient, services, tap::Tap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "upstream-token";
const OTHER_TOKEN: &str = "another-source-token";

struct Intake {
    db: TestDatabase,
    _broker: TestBroker,
    app: services::Running,
    api: IntakeClient,
    events: Tap,
}

impl Intake {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let broker = TestBroker::create().await;
        let settings = services::settings(&[
            ("database.url", db.url.clone()),
            ("amqp.url", broker.url.clone()),
            ("intake.tokens.libcal", TOKEN.to_owned()),
            ("intake.tokens.other", OTHER_TOKEN.to_owned()),
            ("intake.max_body_bytes", "4096".to_owned()),
        ]);
        let events = Tap::on(&broker.url, "lockbridge.bookings").await;
        let app = services::spawn::<Application>(settings).await;
        let intake = Self {
            api: IntakeClient::new(app.addr, TOKEN, reqwest::Client::new()),
            db,
            _broker: broker,
            app,
            events,
        };
        intake.catalogue().await;
        intake
    }

    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.api.put(path, body).await
    }

    async fn delete(&self, path: &str) -> StatusCode {
        let response = self.api.request(Method::DELETE, path).send().await;
        response.expect("DELETE").status()
    }

    async fn request(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (StatusCode, Option<String>, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            status,
            content_type,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn catalogue(&self) {
        self.api
            .put_catalogue([
            (
                "/v1/locations/main",
                json!({"name": "Main Library", "time_zone": "America/New_York"}),
            ),
            (
                "/v1/categories/study",
                json!({"location_id": "main", "name": "Study rooms"}),
            ),
            (
                "/v1/spaces/sp-101",
                json!({"category_id": "study", "name": "Study Room 101", "kind": "bookable_as_whole"}),
            ),
        ])
            .await;
    }

    async fn booking_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bookings")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn outbox_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Nothing stored, nothing queued for publishing, nothing published.
    async fn assert_nothing_happened(&mut self) {
        assert_eq!(self.booking_count().await, 0, "no booking stored");
        assert_eq!(self.outbox_count().await, 0, "no event in the outbox");
        self.assert_no_event(Duration::from_millis(300), "no event published")
            .await;
    }

    async fn assert_no_event(&mut self, wait: Duration, why: &str) {
        let event = self.events.next(wait).await;
        assert!(event.is_none(), "{why}");
    }

    /// A PUT refused with `status`, its problem naming `field`.
    async fn assert_put_refused(&self, path: &str, body: &Value, status: StatusCode, field: &str) {
        let (actual, problem) = self.put(path, body).await;
        assert_eq!(
            (actual, problem["field"].clone()),
            (status, json!(field)),
            "{problem}"
        );
    }
}

fn booking(status: &str, revision: Option<i64>) -> Value {
    let mut body = json!({
        "space_id": "sp-101",
        "starts_at": "2026-12-01T14:00:00-05:00",
        "ends_at": "2026-12-01T15:30:00-05:00",
        "status": status,
        "patron": {"name": "Ada Lovelace", "email": "ada@example.edu"},
    });
    if let Some(revision) = revision {
        body["revision"] = json!(revision);
    }
    body
}

/// A valid confirmed booking with the field at `pointer` replaced, or removed when `None`.
fn altered(pointer: &str, value: Option<Value>) -> Value {
    let mut body = booking("confirmed", None);
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let object = body
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object");
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
    body
}

const EVENT_WAIT: Duration = Duration::from_secs(10);
/// How long to listen before concluding that no event comes.
const QUIET: Duration = Duration::from_millis(500);

#[tokio::test]
async fn a_confirmed_booking_is_stored_and_announced_once() {
    let mut intake = Intake::start().await;
    let (status, stored) = intake
        .put("/v1/bookings/b-1", &booking("confirmed", Some(1)))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stored}");
    assert_eq!(stored["booking_id"], "b-1");
    assert_eq!(stored["starts_at"], "2026-12-01T19:00:00Z");
    assert_eq!(stored["pin"]["state"], "not_applicable");

    let delivery = intake
        .events
        .next(EVENT_WAIT)
        .await
        .expect("booking.confirmed published");
    let event: Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(delivery.routing_key.as_str(), "booking.confirmed");
    let properties = &delivery.properties;
    assert_eq!(
        properties.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    assert_eq!(properties.delivery_mode(), &Some(2));
    assert_eq!(
        properties.kind().as_ref().map(|s| s.as_str()),
        Some("booking.confirmed")
    );
    assert_eq!(
        properties.message_id().as_ref().map(|s| s.to_string()),
        event["event_id"].as_str().map(str::to_owned)
    );
    assert_eq!(event["event_type"], "booking.confirmed");
    assert_eq!(event["schema_version"], 1);
    assert_eq!(event["data"]["booking_id"], "b-1");
    assert_eq!(event["data"]["time_zone"], "America/New_York");
    assert_eq!(event["data"]["patron"]["email"], "ada@example.edu");

    // The same PUT again changes nothing and emits nothing.
    let (status, again) = intake
        .put("/v1/bookings/b-1", &booking("confirmed", Some(1)))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["updated_at"], stored["updated_at"]);
    intake.assert_no_event(QUIET, "no event").await;
    assert_eq!(intake.outbox_count().await, 1);
    let published: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            .fetch_one(&intake.db.pool)
            .await
            .unwrap();
    assert_eq!(
        published, 1,
        "the relay marks the row sent after the confirm"
    );
}

#[tokio::test]
async fn status_changes_emit_the_matching_events() {
    let mut intake = Intake::start().await;
    let (status, _) = intake
        .put("/v1/bookings/b-2", &booking("tentative", Some(1)))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    intake
        .assert_no_event(QUIET, "tentative bookings say nothing yet")
        .await;

    intake
        .put("/v1/bookings/b-2", &booking("confirmed", Some(2)))
        .await;
    assert_eq!(
        intake.events.next_json(EVENT_WAIT).await["event_type"],
        "booking.confirmed"
    );

    let mut moved = booking("confirmed", Some(3));
    moved["ends_at"] = json!("2026-12-01T16:00:00-05:00");
    intake.put("/v1/bookings/b-2", &moved).await;
    let changed = intake.events.next_json(EVENT_WAIT).await;
    assert_eq!(changed["event_type"], "booking.changed");
    assert_eq!(changed["data"]["ends_at"], "2026-12-01T21:00:00Z");

    assert_eq!(
        intake.delete("/v1/bookings/b-2").await,
        StatusCode::ACCEPTED
    );
    let cancelled = intake.events.next_json(EVENT_WAIT).await;
    assert_eq!(cancelled["event_type"], "booking.cancelled");
    // All of one booking's events share its correlation id.
    assert_eq!(cancelled["correlation_id"], changed["correlation_id"]);

    assert_eq!(
        intake.delete("/v1/bookings/b-2").await,
        StatusCode::ACCEPTED,
        "cancelling twice is harmless"
    );
    intake.assert_no_event(QUIET, "no event").await;
}

#[tokio::test]
async fn a_stale_revision_is_refused_and_changes_nothing() {
    let mut intake = Intake::start().await;
    intake
        .put("/v1/bookings/b-3", &booking("confirmed", Some(5)))
        .await;
    intake.events.next_json(EVENT_WAIT).await;
    let mut older = booking("cancelled", Some(4));
    older["patron"]["name"] = json!("Someone Else");
    let (status, problem) = intake.put("/v1/bookings/b-3", &older).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["field"], "revision");
    let (status, problem) = intake
        .put("/v1/bookings/b-3", &{
            let mut same_revision = booking("confirmed", Some(5));
            same_revision["ends_at"] = json!("2026-12-01T17:00:00-05:00");
            same_revision
        })
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let stored: (String, String, Option<i64>) = sqlx::query_as(
        "SELECT status::text, patron_name, revision FROM bookings WHERE booking_id = 'b-3'",
    )
    .fetch_one(&intake.db.pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        ("confirmed".to_owned(), "Ada Lovelace".to_owned(), Some(5))
    );
    intake.assert_no_event(QUIET, "no event").await;
}

#[tokio::test]
async fn bad_bookings_get_a_problem_naming_the_field_and_change_nothing() {
    let mut intake = Intake::start().await;
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "missing space",
            altered("/space_id", None),
            invalid,
            "space_id",
        ),
        (
            "missing patron email",
            altered("/patron/email", None),
            invalid,
            "patron.email",
        ),
        (
            "bad email",
            altered("/patron/email", Some(json!("not-an-email"))),
            invalid,
            "patron.email",
        ),
        (
            "end before start",
            altered("/ends_at", Some(json!("2026-12-01T13:00:00-05:00"))),
            invalid,
            "ends_at",
        ),
        (
            "time without offset",
            altered("/starts_at", Some(json!("2026-12-01T14:00:00"))),
            invalid,
            "starts_at",
        ),
        (
            "unknown status",
            booking("approved", None),
            invalid,
            "status",
        ),
        (
            "negative revision",
            booking("confirmed", Some(-1)),
            invalid,
            "revision",
        ),
        (
            "unknown space",
            altered("/space_id", Some(json!("sp-404"))),
            invalid,
            "space_id",
        ),
        (
            "oversize body",
            altered("/patron/name", Some(json!("x".repeat(5000)))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
        ),
    ];
    for (case, body, expected, field) in cases {
        let (status, content_type, problem) = intake
            .request(
                intake
                    .api
                    .request(Method::PUT, "/v1/bookings/b-bad")
                    .json(&body),
            )
            .await;
        assert_eq!(status, expected, "{case}: {problem}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{case}"
        );
        assert_eq!(problem["field"], field, "{case}: {problem}");
        assert_eq!(problem["status"], expected.as_u16(), "{case}");
        if expected == StatusCode::PAYLOAD_TOO_LARGE {
            // The configured limit, not whatever number axum's message happened to end with.
            assert_eq!(
                problem["detail"], "the body may be at most 4096 bytes",
                "{case}"
            );
        }
    }

    let malformed = intake
        .api
        .request(Method::PUT, "/v1/bookings/b-bad")
        .header("content-type", "application/json")
        .body("{\"space_id\": ");
    let (status, _, problem) = intake.request(malformed).await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("body")),
        "{problem}"
    );

    let not_json = intake
        .api
        .request(Method::PUT, "/v1/bookings/b-bad")
        .body("space_id=sp-101");
    let (status, _, _) = intake.request(not_json).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, _, problem) = intake
        .request(
            intake
                .api
                .request(Method::PUT, "/v1/bookings/b%20bad")
                .json(&booking("confirmed", None)),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("booking_id")),
        "{problem}"
    );

    intake.assert_nothing_happened().await;
}

#[tokio::test]
async fn requests_without_the_right_token_are_refused() {
    let mut intake = Intake::start().await;
    let url = intake.app.url("/v1/bookings/b-auth");
    for request in [
        intake.api.http.put(&url).json(&booking("confirmed", None)),
        intake
            .api
            .http
            .put(&url)
            .bearer_auth("wrong-token")
            .json(&booking("confirmed", None)),
        intake
            .api
            .http
            .put(&url)
            .header("authorization", format!("Basic {TOKEN}"))
            .json(&booking("confirmed", None)),
        intake.api.http.get(&url),
    ] {
        let (status, content_type, problem) = intake.request(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    }
    intake.assert_nothing_happened().await;
    // Health endpoints need no token.
    let health = intake
        .api
        .http
        .get(intake.app.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn catalogue_errors_name_the_field() {
    let intake = Intake::start().await;
    intake
        .assert_put_refused(
            "/v1/locations/branch",
            &json!({"name": "Branch", "time_zone": "Mars/Olympus"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "time_zone",
        )
        .await;
    intake
        .assert_put_refused(
            "/v1/categories/rooms",
            &json!({"location_id": "nowhere", "name": "Rooms"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "location_id",
        )
        .await;
    intake
        .assert_put_refused(
            "/v1/spaces/sp-9",
            &json!({"category_id": "study", "name": "Seat 9", "kind": "chair"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "kind",
        )
        .await;
    let (status, _) = intake
        .put(
            "/v1/locations/main",
            &json!({"name": "Main Library", "time_zone": "America/New_York"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "an existing location answers 200");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM locations")
        .fetch_one(&intake.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn bookings_are_private_to_their_source() {
    let intake = Intake::start().await;
    intake
        .put("/v1/bookings/b-own", &booking("tentative", None))
        .await;
    let path = "/v1/bookings/b-own";
    let other = IntakeClient::new(intake.app.addr, OTHER_TOKEN, intake.api.http.clone());
    let (status, _, view) = intake.request(intake.api.request(Method::GET, path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "tentative");
    let (status, _, _) = intake.request(other.request(Method::GET, path)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another source cannot see it"
    );
    let (status, _, problem) = intake
        .request(
            other
                .request(Method::PUT, path)
                .json(&booking("cancelled", None)),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::CONFLICT, json!("booking_id")),
        "{problem}"
    );
    for (client, path) in [(&other, path), (&intake.api, "/v1/bookings/b-missing")] {
        let (status, _, _) = intake.request(client.request(Method::GET, path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}");
        let (status, _, _) = intake.request(client.request(Method::DELETE, path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "DELETE {path}");
    }
    let stored: String =
        sqlx::query_scalar("SELECT status::text FROM bookings WHERE booking_id = 'b-own'")
            .fetch_one(&intake.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, "tentative");
}

/// Writes arriving together are stored together (one transaction for many), yet each is decided
/// on its own and gets its own answer: a refused change refuses only itself, a change that
/// PostgreSQL will not store fails alone, and every stored booking is announced once.
#[tokio::test]
async fn writes_arriving_together_are_each_decided_answered_and_announced_on_their_own() {
    let mut intake = Intake::start().await;
    // A row PostgreSQL refuses in whatever batch it lands, as a broken constraint would.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.patron_name = 'Poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON bookings
             FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
    )
    .execute(&intake.db.pool)
    .await
    .unwrap();
    const VALID: usize = 120;
    const UNKNOWN_SPACE: usize = 20;
    let patron =
        |i: usize| json!({"name": format!("Patron {i}"), "email": format!("p{i}@example.edu")});
    let mut writes = Vec::new();
    for i in 0..VALID {
        let mut body = booking("confirmed", Some(1));
        body["patron"] = patron(i);
        writes.push((format!("/v1/bookings/b-{i}"), body, StatusCode::ACCEPTED));
    }
    for i in 0..UNKNOWN_SPACE {
        let body = altered("/space_id", Some(json!("sp-missing")));
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        writes.push((format!("/v1/bookings/nowhere-{i}"), body, status));
    }
    let mut poison = booking("confirmed", None);
    poison["patron"]["name"] = json!("Poison");
    let status = StatusCode::SERVICE_UNAVAILABLE;
    writes.push(("/v1/bookings/poison".to_owned(), poison, status));

    let answers =
        futures_util::future::join_all(writes.iter().map(|(path, body, _)| intake.put(path, body)))
            .await;
    for ((path, body, expected), (status, answer)) in writes.iter().zip(answers) {
        assert_eq!(status, *expected, "{path}: {answer}");
        match status {
            // Its own answer, not a neighbour's from the same batch.
            StatusCode::ACCEPTED => {
                assert_eq!(
                    format!("/v1/bookings/{}", answer["booking_id"].as_str().unwrap()),
                    *path
                );
                assert_eq!(answer["patron"], body["patron"], "{path}");
            }
            StatusCode::UNPROCESSABLE_ENTITY => assert_eq!(answer["field"], "space_id"),
            _ => assert_eq!(answer["status"], 503, "{answer}"),
        }
    }
    assert_eq!(intake.booking_count().await, VALID as i64);
    assert_eq!(intake.outbox_count().await, VALID as i64);
    let mut announced = std::collections::BTreeSet::new();
    for _ in 0..VALID {
        let event = intake.events.next_json(EVENT_WAIT).await;
        let booking_id = event["data"]["booking_id"].as_str().unwrap().to_owned();
        assert!(announced.insert(booking_id), "announced once: {event}");
    }
    intake
        .assert_no_event(QUIET, "nothing more announced")
        .await;
}
