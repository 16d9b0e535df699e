//! The notifier against real PostgreSQL, RabbitMQ and SMTP (MailDev): one email per PIN
//! version whatever the broker redelivers, poison messages dead-lettered, and emails that wait
//! in the job queue while the SMTP relay is down.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use lockbridge_e2e::{Mailbox, TestBroker, TestDatabase, mailbox, services};
use lockbridge_shared::{
    amqp::{Broker, OutgoingMessage, Publisher, topology},
    configuration::Settings,
    domain::{BookingId, LockId, Patron, Pin, SpaceId},
    events::{Envelope, EventType, PINS_EXCHANGE, PinIssuedData, PinReason},
    service::Service,
};
use notifier::Application;
use uuid::Uuid;

/// How long to wait for something asynchronous before calling it a failure. Generous: the
/// tests check what happens, not how fast.
const WAIT: Duration = Duration::from_secs(60);

struct Harness {
    db: TestDatabase,
    broker: TestBroker,
    publisher: Publisher,
    mailbox: Mailbox,
}

#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    state: String,
    attempts: i32,
    last_error: Option<String>,
}

impl Harness {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let broker = TestBroker::create().await;
        let connection = Broker::connect(broker.url.clone().into(), "notifier-test")
            .await
            .expect("connect to the test vhost");
        // Declared before the notifier starts, so messages published first are not unroutable.
        topology::declare(&connection.channel().await.expect("channel"))
            .await
            .expect("declare topology");
        Self {
            db,
            broker,
            publisher: Publisher::new(connection),
            mailbox: Mailbox::default(),
        }
    }

    fn settings(&self, smtp_url: String) -> Settings {
        services::settings(&[
            ("database.url", self.db.url.clone()),
            ("amqp.url", self.broker.url.clone()),
            ("smtp.url", smtp_url),
        ])
    }

    async fn start(&self) -> services::Running {
        services::spawn::<Application>(self.settings(mailbox::smtp_url())).await
    }

    async fn publish(&mut self, event: &Envelope<PinIssuedData>) {
        let payload = serde_json::to_vec(event).expect("serialize event");
        self.publish_raw(event.event_id, &payload).await;
    }

    async fn publish_raw(&mut self, event_id: Uuid, payload: &[u8]) {
        self.publisher
            .publish(&OutgoingMessage {
                exchange: PINS_EXCHANGE,
                routing_key: EventType::PinIssued.as_str(),
                event_id,
                correlation_id: Uuid::new_v4(),
                payload,
            })
            .await
            .expect("publish pin.issued");
    }

    async fn job(&self, pin: &PinIssuedData) -> Option<JobRow> {
        sqlx::query_as(
            "SELECT state::text AS state, attempts, last_error FROM jobs
             WHERE queue = 'email' AND job_key = $1",
        )
        .bind(format!("{}:{}", pin.booking_id, pin.pin_version))
        .fetch_optional(&self.db.pool)
        .await
        .expect("read jobs")
    }

    async fn count(&self, query: &str) -> i64 {
        sqlx::query_scalar(query)
            .fetch_one(&self.db.pool)
            .await
            .expect("count rows")
    }

    async fn claimed(&self, event: &Envelope<PinIssuedData>) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = 'notifier' AND event_id = $1)",
        )
        .bind(event.event_id)
        .fetch_one(&self.db.pool)
        .await
        .expect("read processed_events")
    }

    /// Waits until every email job has stopped running, successfully.
    async fn all_jobs_succeeded(&self) {
        eventually("every email job succeeded", async || {
            self.count("SELECT count(*) FROM jobs WHERE state <> 'succeeded'")
                .await
                == 0
        })
        .await;
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn patron_address() -> String {
    format!("{}@example.test", Uuid::new_v4().simple())
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
}

/// `pin.issued` for booking `booking_id`: 14:00–15:30 in New York on Tue 1 Dec 2026, the PIN
/// working 13:45–15:35.
fn pin_issued(
    booking_id: &str,
    email: &str,
    pin: &str,
    pin_version: i32,
    reason: PinReason,
) -> Envelope<PinIssuedData> {
    Envelope::new(
        EventType::PinIssued,
        Uuid::new_v4(),
        PinIssuedData {
            booking_id: BookingId::parse(booking_id).unwrap(),
            patron: Patron {
                name: "Ada Lovelace".into(),
                email: email.into(),
            },
            space_id: SpaceId::parse("sp-101").unwrap(),
            space_name: "Study Room 101".into(),
            location_name: "Main Library".into(),
            lock_id: LockId::parse("lock-1").unwrap(),
            pin: Pin::parse(pin).unwrap(),
            booking_starts_at: utc("2026-12-01T19:00:00Z"),
            booking_ends_at: utc("2026-12-01T20:30:00Z"),
            valid_from: utc("2026-12-01T18:45:00Z"),
            valid_until: utc("2026-12-01T20:35:00Z"),
            local_valid_from: local("2026-12-01T13:45"),
            local_valid_until: local("2026-12-01T15:35"),
            time_zone: "America/New_York".parse().unwrap(),
            pin_version,
            reason,
        },
    )
}

#[tokio::test]
async fn a_pin_issued_event_sends_one_email_with_the_pin_place_and_local_times() {
    let mut h = Harness::new().await;
    let notifier = h.start().await;
    let address = patron_address();
    let event = pin_issued("lc-1", &address, "482193", 1, PinReason::New);

    h.publish(&event).await;

    let emails = h.mailbox.wait_for(&address, 1, WAIT).await;
    let email = &emails[0];
    assert_eq!(
        email.subject,
        "Your door PIN for Study Room 101 — Tue 1 Dec 2026"
    );
    for body in [&email.text, &email.html] {
        for fact in [
            "482193",
            "Study Room 101",
            "Main Library",
            "Tue 1 Dec 2026, 14:00–15:30",
            "Your PIN works from 13:45 on Tue 1 Dec until 15:35",
            "America/New_York",
        ] {
            assert!(body.contains(fact), "{fact:?} missing from:\n{body}");
        }
    }
    h.all_jobs_succeeded().await;
    let (recipient, message_id): (String, String) = sqlx::query_as(
        "SELECT recipient, message_id FROM sent_emails WHERE booking_id = 'lc-1' AND pin_version = 1",
    )
    .fetch_one(&h.db.pool)
    .await
    .expect("the send is recorded");
    assert_eq!(recipient, address);
    assert_eq!(
        message_id,
        format!("<{}@lockbridge.invalid>", event.event_id)
    );
    assert_eq!(h.mailbox.to(&address).await.len(), 1, "exactly one email");

    let ready = reqwest::get(notifier.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    notifier.stop().await;
}

#[tokio::test]
async fn redelivered_and_repeated_events_for_one_pin_send_one_email() {
    let mut h = Harness::new().await;
    let address = patron_address();
    let first = pin_issued("lc-1", &address, "482193", 1, PinReason::New);
    // Another event (another id) for the same booking and PIN version.
    let repeat = pin_issued("lc-1", &address, "482193", 1, PinReason::New);
    // Published last, for another booking: once it is claimed, everything before it in the
    // queue has been handled.
    let marker = pin_issued("lc-2", &patron_address(), "559031", 1, PinReason::New);

    // Published before the notifier runs, so the duplicates wait in the queue together.
    h.publish(&first).await;
    h.publish(&first).await;
    h.publish(&repeat).await;
    h.publish(&marker).await;
    let notifier = h.start().await;

    eventually("the marker event is claimed", async || {
        h.claimed(&marker).await
    })
    .await;
    h.all_jobs_succeeded().await;
    assert!(h.claimed(&repeat).await, "the repeat was consumed too");
    assert_eq!(h.mailbox.to(&address).await.len(), 1, "exactly one email");
    assert_eq!(
        h.count("SELECT count(*) FROM sent_emails WHERE booking_id = 'lc-1'")
            .await,
        1
    );
    assert_eq!(
        h.count("SELECT count(*) FROM jobs WHERE job_key LIKE 'lc-1:%'")
            .await,
        1
    );
    notifier.stop().await;
}

#[tokio::test]
async fn a_reissued_pin_sends_a_second_email_with_the_new_pin() {
    let mut h = Harness::new().await;
    let notifier = h.start().await;
    let address = patron_address();

    h.publish(&pin_issued("lc-1", &address, "482193", 1, PinReason::New))
        .await;
    h.mailbox.wait_for(&address, 1, WAIT).await;
    h.publish(&pin_issued(
        "lc-1",
        &address,
        "730518",
        2,
        PinReason::Reissued,
    ))
    .await;

    let emails = h.mailbox.wait_for(&address, 2, WAIT).await;
    let reissued = emails
        .iter()
        .find(|e| e.subject.starts_with("Your new door PIN"))
        .unwrap_or_else(|| panic!("a reissue email among {emails:#?}"));
    assert!(reissued.text.contains("730518"), "{}", reissued.text);
    assert!(
        reissued.text.contains("no longer works"),
        "{}",
        reissued.text
    );
    assert!(!reissued.text.contains("482193"), "{}", reissued.text);
    h.all_jobs_succeeded().await;
    assert_eq!(h.mailbox.to(&address).await.len(), 2);
    notifier.stop().await;
}

#[tokio::test]
async fn unparseable_messages_are_dead_lettered_and_send_nothing() {
    let mut h = Harness::new().await;
    let notifier = h.start().await;

    h.publish_raw(Uuid::new_v4(), b"this is not JSON").await;
    // JSON, but not a pin.issued envelope.
    h.publish_raw(
        Uuid::new_v4(),
        br#"{"event_id": "0b7a4c3e-8f2d-4c55-9d1e-6a0f3b2c1d4e", "data": {}}"#,
    )
    .await;

    let dead_letters = "notifier.pins.dead-letter";
    eventually("both messages are dead-lettered", async || {
        h.broker.queue(dead_letters).await["messages"] == 2
    })
    .await;
    assert_eq!(h.count("SELECT count(*) FROM processed_events").await, 0);
    assert_eq!(h.count("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(h.count("SELECT count(*) FROM sent_emails").await, 0);
    notifier.stop().await;
}

#[tokio::test]
async fn emails_wait_while_smtp_is_down_and_go_out_once_when_it_is_back() {
    let mut h = Harness::new().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("address").port()
    };
    let notifier =
        services::spawn::<Application>(h.settings(format!("smtp://127.0.0.1:{closed_port}"))).await;
    let address = patron_address();
    let event = pin_issued("lc-1", &address, "482193", 1, PinReason::New);

    h.publish(&event).await;
    eventually("the email job has failed once", async || {
        h.job(&event.data)
            .await
            .is_some_and(|job| job.attempts > 0 && job.last_error.is_some())
    })
    .await;
    notifier.stop().await;

    let job = h.job(&event.data).await.expect("the job exists");
    assert_eq!(job.state, "queued", "{job:?}");
    let last_error = job.last_error.expect("last_error");
    assert!(last_error.contains("SMTP relay"), "{last_error}");
    assert!(h.mailbox.to(&address).await.is_empty());
    assert_eq!(h.count("SELECT count(*) FROM sent_emails").await, 0);

    let notifier = h.start().await;
    let emails = h.mailbox.wait_for(&address, 1, WAIT).await;
    assert!(emails[0].text.contains("482193"));
    h.all_jobs_succeeded().await;
    assert_eq!(h.mailbox.to(&address).await.len(), 1, "exactly one email");
    assert_eq!(h.count("SELECT count(*) FROM sent_emails").await, 1);
    notifier.stop().await;
}

#[tokio::test]
async fn a_bad_smtp_url_stops_start_up_with_a_clear_error() {
    let h = Harness::new().await;
    let error = Application::build(h.settings("not a url".into()))
        .await
        .err()
        .expect("start-up fails");
    let message = error.to_string();
    assert!(
        message.starts_with("smtp.url is not an SMTP URL"),
        "{message}"
    );
}

#[tokio::test]
async fn an_email_for_a_pin_that_changed_or_stopped_working_meanwhile_is_not_sent() {
    let mut h = Harness::new().await;
    let _notifier = h.start().await;
    // What the provisioner knows by the time the emails are sent: booking lc-7 is at PIN
    // version 2, booking lc-8's PIN was revoked.
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, pin_version)
         VALUES ('lc-7', gen_random_uuid(), 'issued', 2), ('lc-8', gen_random_uuid(), 'revoked', 1)",
    )
    .execute(&h.db.pool)
    .await
    .unwrap();
    let superseded = patron_address();
    let cancelled = patron_address();
    h.publish(&pin_issued(
        "lc-7",
        &superseded,
        "482193",
        1,
        PinReason::New,
    ))
    .await;
    h.publish(&pin_issued("lc-8", &cancelled, "604918", 1, PinReason::New))
        .await;
    h.publish(&pin_issued(
        "lc-7",
        &superseded,
        "730518",
        2,
        PinReason::Changed,
    ))
    .await;
    let emails = h.mailbox.wait_for(&superseded, 1, WAIT).await;
    assert!(
        emails[0].text.contains("730518"),
        "only the current PIN is emailed: {}",
        emails[0].text
    );
    h.all_jobs_succeeded().await;
    assert!(
        h.mailbox.to(&cancelled).await.is_empty(),
        "no email for a revoked PIN"
    );
    assert_eq!(h.mailbox.to(&superseded).await.len(), 1);
}
