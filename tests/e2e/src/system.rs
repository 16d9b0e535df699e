use std::time::Duration;

use remotelock_sim::{SimConfig, SimHandle, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    Mailbox, TestBroker, TestDatabase,
    admin_api::{AdminClient, CALLBACK_PATH, free_local_port},
    intake_api::IntakeClient,
    mailbox,
    services::{self, Running},
};

pub const INTAKE_TOKEN: &str = "test-intake-token";

/// The whole of lockbridge: the four services in-process on free ports, a fresh database and
/// virtual host, the RemoteLock simulator, and the shared MailDev inbox.
pub struct TestSystem {
    pub db: TestDatabase,
    pub broker: TestBroker,
    pub sim: SimHandle,
    pub mailbox: Mailbox,
    pub intake: Running,
    pub admin: Running,
    pub provisioner: Option<Running>,
    pub notifier: Running,
    /// More provisioners and notifiers on the same database and broker, as other processes.
    pub more_workers: Vec<Running>,
    pub http: reqwest::Client,
    /// The staff address `alerts.recipients` names: unique per system, to read its alerts.
    pub staff: String,
    overrides: Vec<(&'static str, String)>,
}

impl TestSystem {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default(), &[]).await
    }

    /// Starts with a configured simulator and extra settings (dotted keys).
    pub async fn start_with(sim: SimConfig, extra: &[(&'static str, String)]) -> Self {
        let db = TestDatabase::create().await;
        let broker = TestBroker::create().await;
        let sim = Simulator::start(sim).await.expect("simulator starts");
        let admin_addr = free_local_port();
        let staff = unique_patron();
        let mut overrides = vec![
            ("alerts.recipients", staff.clone()),
            ("database.url", db.url.clone()),
            ("amqp.url", broker.url.clone()),
            ("smtp.url", mailbox::smtp_url()),
            ("remotelock.api_url", sim.base_url().to_string()),
            ("remotelock.oauth_url", sim.base_url().to_string()),
            (
                "remotelock.redirect_url",
                format!("http://{admin_addr}{CALLBACK_PATH}"),
            ),
            ("admin.listen", admin_addr.to_string()),
        ];
        overrides.extend(extra.iter().cloned());
        let admin = services::spawn::<admin::Application>(services::settings(&overrides)).await;
        let intake =
            services::spawn::<booking_intake::Application>(services::settings(&overrides)).await;
        let provisioner =
            services::spawn::<lock_provisioner::Application>(services::settings(&overrides)).await;
        let notifier =
            services::spawn::<notifier::Application>(services::settings(&overrides)).await;
        Self {
            db,
            broker,
            sim,
            mailbox: Mailbox::default(),
            intake,
            admin,
            provisioner: Some(provisioner),
            notifier,
            more_workers: Vec::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            staff,
            overrides,
        }
    }

    /// Starts another provisioner and another notifier, as a second process of each would run.
    pub async fn add_worker_processes(&mut self) {
        let provisioner =
            services::spawn::<lock_provisioner::Application>(services::settings(&self.overrides))
                .await;
        let notifier =
            services::spawn::<notifier::Application>(services::settings(&self.overrides)).await;
        self.more_workers.extend([provisioner, notifier]);
    }

    /// Stops the provisioner as SIGTERM would, and starts a fresh one on the same database.
    pub async fn restart_provisioner(&mut self) {
        if let Some(running) = self.provisioner.take() {
            running.stop().await;
        }
        self.provisioner = Some(
            services::spawn::<lock_provisioner::Application>(services::settings(&self.overrides))
                .await,
        );
    }

    /// Stops every service and starts them all again with `extra` settings on top of the
    /// ones they had, as a deployment rolling out new configuration does.
    pub async fn restarted_with(self, extra: &[(&'static str, String)]) -> Self {
        let Self {
            intake,
            admin,
            provisioner,
            notifier,
            more_workers,
            mut overrides,
            ..
        } = self;
        for running in [intake, admin, notifier]
            .into_iter()
            .chain(provisioner)
            .chain(more_workers)
        {
            running.stop().await;
        }
        overrides.extend(extra.iter().cloned());
        let settings = &overrides;
        Self {
            admin: services::spawn::<admin::Application>(services::settings(settings)).await,
            intake: services::spawn::<booking_intake::Application>(services::settings(settings))
                .await,
            provisioner: Some(
                services::spawn::<lock_provisioner::Application>(services::settings(settings))
                    .await,
            ),
            notifier: services::spawn::<notifier::Application>(services::settings(settings)).await,
            more_workers: Vec::new(),
            overrides,
            ..self
        }
    }

    /// The stored authorization dies as if revoked at RemoteLock: its refresh token is refused
    /// and its access token has expired, at RemoteLock too (a service reusing the token it
    /// read a moment ago meets the 401 a revoked token gets).
    pub async fn revoke_authorization_at_remotelock(&self) {
        self.sim.expire_access_tokens();
        let cipher = lockbridge_sealing::Sealer::new(
            lockbridge_remotelock::TOKEN_KEY,
            &services::TOKEN_ENCRYPTION_KEY.into(),
            None,
        )
        .expect("the test key is valid");
        sqlx::query(
            "UPDATE remotelock_authorization SET refresh_token_enc = $1, access_expires_at = now()",
        )
        .bind(cipher.seal(b"revoked-refresh-token"))
        .execute(&self.db.pool)
        .await
        .expect("authorization stored");
    }

    /// The admin's JSON API, as staff tools speak to it.
    pub fn admin_api(&self) -> AdminClient {
        AdminClient::new(self.admin.addr)
    }

    /// Authorizes against the simulator through the admin's OAuth flow, as a browser would.
    pub async fn authorize(&self) {
        self.admin_api().authorize().await;
    }

    /// booking-intake's API, as the `libcal` source.
    pub fn intake_api(&self) -> IntakeClient {
        IntakeClient::new(self.intake.addr, INTAKE_TOKEN, self.http.clone())
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.intake_api().put(path, body).await
    }

    pub async fn get_booking(&self, booking_id: &str) -> Value {
        self.intake_api()
            .request(Method::GET, &format!("/v1/bookings/{booking_id}"))
            .send()
            .await
            .expect("GET booking")
            .json()
            .await
            .expect("booking JSON")
    }

    /// A location in New York with a whole room, a container and a seat.
    pub async fn catalogue(&self) {
        self.intake_api()
            .put_catalogue([
            (
                "/v1/locations/main",
                json!({"name": "Riverside Main", "time_zone": "America/New_York"}),
            ),
            (
                "/v1/categories/rooms",
                json!({"location_id": "main", "name": "Study rooms"}),
            ),
            (
                "/v1/spaces/sp-101",
                json!({"category_id": "rooms", "name": "Study Room 101", "kind": "bookable_as_whole"}),
            ),
            (
                "/v1/spaces/sp-102",
                json!({"category_id": "rooms", "name": "Study Room 102", "kind": "bookable_as_whole"}),
            ),
            (
                "/v1/spaces/hall",
                json!({"category_id": "rooms", "name": "Reading hall", "kind": "container"}),
            ),
            (
                "/v1/spaces/seat-7",
                json!({"category_id": "rooms", "name": "Seat 7", "kind": "seat"}),
            ),
        ])
            .await;
    }

    pub async fn link(&self, space_id: &str, lock_id: &str) -> (StatusCode, Value) {
        self.admin_api().link(space_id, lock_id).await
    }

    /// Authorized, catalogue loaded, `sp-101` linked to the simulator's first lock (in New York).
    pub async fn ready_with_link(&self) -> String {
        self.authorize().await;
        self.catalogue().await;
        let lock = self.sim.seed().locks[0].id.clone();
        let (status, body) = self.link("sp-101", &lock).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        lock
    }

    /// PUTs a confirmed booking of `sp-101` (12 January 2027, 14:00–15:00 New York) for a
    /// patron of its own, and answers the patron's address.
    pub async fn book_confirmed(&self, booking_id: &str) -> String {
        let patron = unique_patron();
        let body = booking(
            "confirmed",
            "2027-01-12T14:00:00-05:00",
            "2027-01-12T15:00:00-05:00",
            &patron,
        );
        let (status, answer) = self.put(&format!("/v1/bookings/{booking_id}"), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        patron
    }

    /// Polls GET /v1/bookings/{id} until its PIN reaches `state`; `issued` is reached by a
    /// PIN the lock confirmed too (`synced`), which may happen before the test looks.
    pub async fn wait_for_pin(&self, booking_id: &str, state: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let booking = self.get_booking(booking_id).await;
            if pin_state_is(&booking["pin"]["state"], state) {
                return booking;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "PIN of {booking_id} never became {state}: {booking}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the notifier has recorded `count` emails of the booking as sent: the message
    /// reaches the inbox a moment before that (and before the line saying so is logged).
    pub async fn wait_for_emails_recorded(&self, booking_id: &str, count: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sent_emails WHERE booking_id = $1")
                    .bind(booking_id)
                    .fetch_one(&self.db.pool)
                    .await
                    .expect("sent_emails readable");
            if sent >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{booking_id}: {sent} emails recorded as sent, not {count}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every outbox row is published: no event is stuck unroutable or unsent.
    pub async fn wait_for_outbox_drained(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stuck: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT routing_key, last_error FROM outbox WHERE published_at IS NULL",
            )
            .fetch_all(&self.db.pool)
            .await
            .expect("outbox readable");
            if stuck.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "events not published: {stuck:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The simulator's guests whose name mentions `booking_id`.
    pub fn guests_for(&self, booking_id: &str) -> Vec<remotelock_sim::GuestSnapshot> {
        self.sim
            .guests()
            .into_iter()
            .filter(|g| g.name.ends_with(&format!(" · {booking_id}")))
            .collect()
    }
}

/// A recipient address no other test uses, so the shared inbox can be filtered by it.
/// Whether a shown PIN state is `wanted`, where an issued PIN the lock confirmed (`synced`)
/// is issued as well.
pub fn pin_state_is(shown: &Value, wanted: &str) -> bool {
    shown == wanted || (wanted == "issued" && shown == "synced")
}

pub fn unique_patron() -> String {
    format!("patron-{}@example.test", uuid::Uuid::new_v4().simple())
}

/// A booking body for `sp-101` from `starts_at` to `ends_at` (RFC 3339 with offsets).
pub fn booking(status: &str, starts_at: &str, ends_at: &str, email: &str) -> Value {
    json!({
        "space_id": "sp-101",
        "starts_at": starts_at,
        "ends_at": ends_at,
        "status": status,
        "patron": {"name": "Ada Lovelace", "email": email},
    })
}
