//! The notifier against real PostgreSQL, RabbitMQ and SMTP (MailDev): one email per PIN
//! version whatever the broker redelivers, poison messages dead-lettered, and emails that wait
//! in the job queue while the SMTP relay is down. Staff alerts for failures, and SMTP faults
//! told apart by who is at fault, against a scripted relay that refuses what MailDev would not.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use lockbridge_domain::{
    BookingId, LockId, Patron, Pin, SpaceId,
    events::{Envelope, EventType, PINS_EXCHANGE, PinIssuedData, PinReason},
};
use lockbridge_e2e::{Mailbox, Script, ScriptedRelay, TestBroker, TestDatabase, mailbox, services};
use lockbridge_runtime::{
    amqp::{Broker, OutgoingMessage, Publisher, topology},
    service::Service,
};
use lockbridge_work::failures::{self, FailureKind, Report, RetryWith};
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
    /// `alerts.recipients`: a staff address no other test uses.
    staff: String,
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
            staff: format!("staff-{}@library.test", Uuid::new_v4().simple()),
        }
    }

    fn settings(&self, smtp_url: String) -> notifier::Settings {
        self.settings_with(smtp_url, &self.staff)
    }

    fn settings_with(&self, smtp_url: String, alert_recipients: &str) -> notifier::Settings {
        services::settings(&[
            ("database.url", self.db.url.clone()),
            ("amqp.url", self.broker.url.clone()),
            ("smtp.url", smtp_url),
            ("alerts.recipients", alert_recipients.to_owned()),
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
                traceparent: None,
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

    /// Booking `booking_id` of Study Room 101 at Main Library (New York), as booking-intake
    /// stores it: 14:00–15:30 on Tue 1 Dec 2026, like [`pin_issued`].
    async fn booking(&self, booking_id: &str, status: &str) {
        sqlx::raw_sql(
            "INSERT INTO locations (location_id, name, time_zone)
                 VALUES ('main', 'Main Library', 'America/New_York') ON CONFLICT DO NOTHING;
             INSERT INTO categories (category_id, location_id, name)
                 VALUES ('rooms', 'main', 'Study rooms') ON CONFLICT DO NOTHING;
             INSERT INTO spaces (space_id, category_id, name, kind)
                 VALUES ('sp-101', 'rooms', 'Study Room 101', 'bookable_as_whole') ON CONFLICT DO NOTHING;",
        )
        .execute(&self.db.pool)
        .await
        .expect("insert the catalogue");
        sqlx::query(
            "INSERT INTO bookings (booking_id, source, space_id, starts_at, ends_at, status,
                                   patron_name, patron_email, correlation_id)
             VALUES ($1, 'libcal', 'sp-101', '2026-12-01T19:00:00Z', '2026-12-01T20:30:00Z',
                     $2::booking_status, 'Ada Lovelace', 'ada@example.test', gen_random_uuid())",
        )
        .bind(booking_id)
        .bind(status)
        .execute(&self.db.pool)
        .await
        .expect("insert the booking");
    }

    /// Opens a failure as the services do; returns its id.
    async fn report(&self, kind: FailureKind, booking_id: Option<&str>, reason: &str) -> i64 {
        let booking_id = booking_id.map(|id| BookingId::parse(id).unwrap());
        let mut tx = self.db.pool.begin().await.unwrap();
        failures::report(
            &mut tx,
            Report {
                kind,
                booking_id: booking_id.as_ref(),
                reason,
                attempts: 1,
                retry: RetryWith::Queue("provisioning"),
            },
        )
        .await
        .expect("report the failure");
        tx.commit().await.unwrap();
        self.open_failure(kind, booking_id.as_ref().map(BookingId::as_str))
            .await
            .expect("the failure is open")
    }

    /// The provisioner's failure when the RemoteLock authorization is gone.
    async fn authorization_lost(&self) -> i64 {
        self.report(
            FailureKind::Authorization,
            None,
            "lockbridge is not authorized with RemoteLock",
        )
        .await
    }

    /// The open failure of `kind` about `booking_id` (`None`: about the whole system).
    async fn open_failure(&self, kind: FailureKind, booking_id: Option<&str>) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT id FROM failures
             WHERE kind = $1 AND booking_id IS NOT DISTINCT FROM $2 AND resolved_at IS NULL",
        )
        .bind(kind)
        .bind(booking_id)
        .fetch_optional(&self.db.pool)
        .await
        .expect("read failures")
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

/// The one email `relay` accepted for `address`, waited for.
async fn relayed_to(relay: &ScriptedRelay, address: &str) -> lockbridge_e2e::smtp_relay::Received {
    eventually(
        &format!("the relay took an email for {address}"),
        async || !relay.received_by(address).is_empty(),
    )
    .await;
    let received = relay.received_by(address);
    assert_eq!(received.len(), 1, "{received:#?}");
    received.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_recipient_refused_at_rcpt_fails_that_email_for_good_and_alerts_staff() {
    let mut h = Harness::new().await;
    let address = patron_address();
    let relay = ScriptedRelay::start(
        Script::default().refusing(&address, &format!("550 5.1.1 <{address}>: User unknown")),
    )
    .await;
    let _notifier = services::spawn::<Application>(h.settings(relay.url(None))).await;
    h.booking("lc-1", "confirmed").await;
    let event = pin_issued("lc-1", &address, "482193", 1, PinReason::New);

    h.publish(&event).await;

    let alert = relayed_to(&relay, &h.staff).await;
    assert_eq!(
        alert.subject(),
        "Patron not emailed their PIN for booking lc-1 (Study Room 101, Tue 1 Dec 14:00)"
    );
    let body = alert.decoded();
    assert!(body.contains("User unknown"), "{body}");
    assert!(!body.contains("482193"), "no PIN in an alert: {body}");
    assert!(
        !body.contains(&address),
        "the patron's address is masked: {body}"
    );
    let job = h.job(&event.data).await.expect("the job exists");
    assert_eq!(job.state, "failed", "{job:?}");
    assert_eq!(job.attempts, 1, "not retried: {job:?}");
    assert!(
        h.open_failure(FailureKind::EmailNotSent, Some("lc-1"))
            .await
            .is_some(),
        "the booking's email failure is open"
    );
    assert_eq!(
        h.open_failure(FailureKind::EmailNotSent, None).await,
        None,
        "the relay itself is fine"
    );
    assert!(relay.received_by(&address).is_empty());
}

#[tokio::test]
async fn refused_smtp_credentials_are_the_relays_fault_and_the_email_waits_for_it() {
    let mut h = Harness::new().await;
    let refusing = Script {
        auth: true,
        auth_reply: Some("535 5.7.8 Authentication credentials invalid".into()),
        ..Script::default()
    };
    let relay = ScriptedRelay::start(refusing).await;
    let _notifier = services::spawn::<Application>(h.settings(relay.url(Some("lockbridge")))).await;
    let address = patron_address();
    let event = pin_issued("lc-1", &address, "482193", 1, PinReason::New);

    h.publish(&event).await;

    // Reported once it has lasted three attempts (2 s and 4 s apart, give or take jitter).
    eventually("the relay's failure is open", async || {
        h.open_failure(FailureKind::EmailNotSent, None)
            .await
            .is_some()
    })
    .await;
    // Spend the job's attempts, as a day and a half of refusals would.
    sqlx::query("UPDATE jobs SET attempts = 79, run_at = now() WHERE queue = 'email'")
        .execute(&h.db.pool)
        .await
        .unwrap();
    // A claim counts the attempt as it starts it: wait for that run to end, not to begin.
    eventually("the job has run its last attempt", async || {
        h.job(&event.data)
            .await
            .is_some_and(|job| job.attempts >= 80 && job.state != "running")
    })
    .await;
    let job = h.job(&event.data).await.unwrap();
    assert_eq!(job.state, "queued", "never given up: {job:?}");
    let last_error = job.last_error.unwrap_or_default();
    assert!(
        last_error.contains("the SMTP relay is failing"),
        "{last_error}"
    );
    assert!(last_error.contains("535"), "{last_error}");
    assert_eq!(
        h.count("SELECT count(*) FROM failures WHERE resolved_at IS NULL")
            .await,
        1,
        "one failure, the relay's, and none for the patron's email"
    );

    // The relay takes our credentials again; staff retry the relay's failure.
    relay.set_script(Script {
        auth: true,
        ..Script::default()
    });
    let failure = h
        .open_failure(FailureKind::EmailNotSent, None)
        .await
        .unwrap();
    failures::retry(&h.db.pool, failure).await.expect("retry");

    let email = relayed_to(&relay, &address).await;
    assert!(email.decoded().contains("482193"));
    eventually("the relay's failure is resolved", async || {
        h.open_failure(FailureKind::EmailNotSent, None)
            .await
            .is_none()
    })
    .await;
    eventually("the email job succeeded", async || {
        h.job(&event.data)
            .await
            .is_some_and(|job| job.state == "succeeded")
    })
    .await;
}

#[tokio::test]
async fn relaying_denied_at_rcpt_is_the_relays_fault_not_the_patrons() {
    let mut h = Harness::new().await;
    let address = patron_address();
    let relay = ScriptedRelay::start(Script::default().refusing(
        &address,
        &format!("554 5.7.1 <{address}>: Relay access denied"),
    ))
    .await;
    let _notifier = services::spawn::<Application>(h.settings(relay.url(None))).await;
    let event = pin_issued("lc-1", &address, "482193", 1, PinReason::New);

    h.publish(&event).await;

    // This relay still takes mail for staff, so the alert goes out.
    let alert = relayed_to(&relay, &h.staff).await;
    assert_eq!(
        alert.subject(),
        "PIN emails are not going out: the SMTP relay is failing"
    );
    assert!(alert.decoded().contains("Relay access denied"));
    let job = h.job(&event.data).await.expect("the job exists");
    assert_eq!(job.state, "queued", "retried, not given up: {job:?}");
    assert!(job.attempts >= 3, "{job:?}");
    assert!(
        h.open_failure(FailureKind::EmailNotSent, None)
            .await
            .is_some()
    );
    assert_eq!(
        h.open_failure(FailureKind::EmailNotSent, Some("lc-1"))
            .await,
        None,
        "not the patron's failure"
    );
}

#[tokio::test]
async fn an_alert_for_a_failure_resolved_meanwhile_sends_nothing() {
    let h = Harness::new().await;
    h.report(
        FailureKind::PinNotIssued,
        Some("lc-1"),
        "no PIN could be issued: RemoteLock is unavailable for now",
    )
    .await;
    failures::resolve(
        &h.db.pool,
        FailureKind::PinNotIssued,
        Some(&BookingId::parse("lc-1").unwrap()),
    )
    .await
    .unwrap();
    // Reported after the first: once its alert is out, the first alert job has run.
    h.authorization_lost().await;
    let _notifier = h.start().await;

    let emails = h.mailbox.wait_for(&h.staff, 1, WAIT).await;
    assert_eq!(
        emails[0].subject,
        "RemoteLock authorization stopped working"
    );
    h.all_jobs_succeeded().await;
    assert_eq!(
        h.mailbox.to(&h.staff).await.len(),
        1,
        "no alert for the resolved failure"
    );
}

#[tokio::test]
async fn every_alert_kind_names_the_booking_and_never_the_pin() {
    let h = Harness::new().await;
    for (booking, status) in [
        ("lc-1", "cancelled"),
        ("lc-2", "confirmed"),
        ("lc-3", "confirmed"),
    ] {
        h.booking(booking, status).await;
    }
    sqlx::query(
        "INSERT INTO booking_pins (booking_id, correlation_id, state, space_id, lock_id, pin, pin_version)
         VALUES ('lc-1', gen_random_uuid(), 'issued', 'sp-101', 'lock-1', '482193', 1),
                ('lc-3', gen_random_uuid(), 'issued', 'sp-101', 'lock-1', '604918', 1)",
    )
    .execute(&h.db.pool)
    .await
    .unwrap();
    let revoke = h
        .report(
            FailureKind::PinNotRevoked,
            Some("lc-1"),
            "the booking no longer wants a PIN, but its RemoteLock guest could not be \
             deactivated, so the PIN still opens the door: RemoteLock is unavailable for now. \
             lockbridge keeps trying.",
        )
        .await;
    h.report(
        FailureKind::PinNotIssued,
        Some("lc-2"),
        "no PIN could be issued: RemoteLock refused the request (403): forbidden",
    )
    .await;
    h.report(
        FailureKind::EmailNotSent,
        Some("lc-3"),
        "the PIN email to the patron was given up: the SMTP relay refused the recipient's address",
    )
    .await;
    h.authorization_lost().await;
    let _notifier = h.start().await;

    let emails = h.mailbox.wait_for(&h.staff, 4, WAIT).await;
    let mut subjects: Vec<&str> = emails.iter().map(|e| e.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        [
            "No PIN for booking lc-2 (Study Room 101, Tue 1 Dec 14:00)",
            "Patron not emailed their PIN for booking lc-3 (Study Room 101, Tue 1 Dec 14:00)",
            "RemoteLock authorization stopped working",
            "URGENT: cancelled booking lc-1 still opens Study Room 101",
        ]
    );
    for email in &emails {
        for body in [&email.text, &email.html] {
            for pin in ["482193", "604918"] {
                assert!(!body.contains(pin), "a PIN in an alert:\n{body}");
            }
            assert!(body.contains("/api/v1/failures/"), "{body}");
        }
        if email.subject != "RemoteLock authorization stopped working" {
            assert!(
                email.text.contains("Study Room 101 at Main Library"),
                "{}",
                email.text
            );
        }
    }
    let urgent = emails
        .iter()
        .find(|e| e.subject.starts_with("URGENT"))
        .unwrap();
    assert!(
        urgent
            .text
            .contains(&format!("POST /api/v1/failures/{revoke}/retry")),
        "{}",
        urgent.text
    );
}

#[tokio::test]
async fn a_waiting_email_for_a_booking_cancelled_meanwhile_is_not_sent() {
    let mut h = Harness::new().await;
    // The PIN record still says issued: the provisioner has not revoked it yet.
    h.booking("lc-1", "cancelled").await;
    let _notifier = h.start().await;
    let address = patron_address();

    let event = pin_issued("lc-1", &address, "482193", 1, PinReason::New);
    h.publish(&event).await;

    eventually("the email job ran", async || {
        h.job(&event.data)
            .await
            .is_some_and(|job| job.state == "succeeded")
    })
    .await;
    assert!(
        h.mailbox.to(&address).await.is_empty(),
        "no PIN for a cancelled booking"
    );
    assert_eq!(h.count("SELECT count(*) FROM sent_emails").await, 0);
}

#[tokio::test]
async fn a_corrected_patron_address_gets_the_pin_again() {
    let mut h = Harness::new().await;
    let _notifier = h.start().await;
    let (old, new) = (patron_address(), patron_address());

    h.publish(&pin_issued("lc-1", &old, "482193", 1, PinReason::New))
        .await;
    h.mailbox.wait_for(&old, 1, WAIT).await;
    h.publish(&pin_issued("lc-1", &new, "482193", 2, PinReason::Changed))
        .await;

    let emails = h.mailbox.wait_for(&new, 1, WAIT).await;
    assert!(
        emails[0].subject.starts_with("Updated booking"),
        "{}",
        emails[0].subject
    );
    for fact in ["482193", "has changed", "Tue 1 Dec 2026, 14:00–15:30"] {
        assert!(
            emails[0].text.contains(fact),
            "{fact:?} missing from:\n{}",
            emails[0].text
        );
    }
    h.all_jobs_succeeded().await;
    assert_eq!(
        h.mailbox.to(&old).await.len(),
        1,
        "the old address gets nothing more"
    );
}

#[tokio::test]
async fn alerts_with_no_recipients_are_completed_without_an_email() {
    let h = Harness::new().await;
    h.authorization_lost().await;
    let _notifier = services::spawn::<Application>(h.settings_with(mailbox::smtp_url(), "")).await;

    h.all_jobs_succeeded().await;
    assert!(h.mailbox.to(&h.staff).await.is_empty());
}

#[tokio::test]
async fn an_invalid_alert_recipient_stops_start_up_with_a_clear_error() {
    let h = Harness::new().await;
    let error = Application::build(
        h.settings_with(mailbox::smtp_url(), "desk@library.test, not-an-address"),
    )
    .await
    .err()
    .expect("start-up fails");
    let message = error.to_string();
    assert!(
        message.starts_with("alerts.recipients must be comma-separated email addresses"),
        "{message}"
    );
    assert!(message.contains("\"not-an-address\""), "{message}");
}
