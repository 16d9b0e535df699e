//! The RemoteLock client against the simulator, with its authorization stored in a real
//! PostgreSQL database.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use futures_util::future::join_all;
use lockbridge_domain::{BookingWindow, GuestId, LockId, LockLocalWindow, Pin, TimeZone};
use lockbridge_e2e::TestDatabase;
use lockbridge_remotelock::RemoteLockSettings;
use lockbridge_remotelock::{
    GuestStatus, GuestUpdate, NewAccessGuest, NotAuthorized, OAuthClient, RemoteLockClient,
    RemoteLockError, TokenManager, TokenSet, Urgency, Work,
};
use lockbridge_sealing::Sealer;
use remotelock_sim::{Fault, FaultKind, Method, PersonStatus, SimConfig, SimHandle, Simulator};
use secrecy::{ExposeSecret, SecretString};

/// Any 32 bytes in base64 will do.
const TEST_KEY: &str = "bG9ja2JyaWRnZS10ZXN0LWtleS0zMi1ieXRlcyEhISE=";

struct Harness {
    sim: SimHandle,
    db: TestDatabase,
    settings: RemoteLockSettings,
}

impl Harness {
    /// A simulator and a database with no stored authorization.
    async fn unauthorized() -> Self {
        Self::with_timeout(Duration::from_secs(10)).await
    }

    async fn with_timeout(request_timeout: Duration) -> Self {
        Self::with(SimConfig::default(), request_timeout).await
    }

    async fn with(config: SimConfig, request_timeout: Duration) -> Self {
        let sim = Simulator::start(config).await.expect("start the simulator");
        let settings = RemoteLockSettings {
            api_url: sim.base_url(),
            oauth_url: sim.base_url(),
            client_id: SimConfig::default().client_id,
            client_secret: SimConfig::default().client_secret.into(),
            redirect_url: "http://127.0.0.1:8082/remotelock/callback".parse().unwrap(),
            token_encryption_key: TEST_KEY.into(),
            previous_token_encryption_key: None,
            webhook_secret: SecretString::default(),
            dashboard_url: "https://connect.remotelock.com/".parse().unwrap(),
            request_timeout,
        };
        Self {
            sim,
            db: TestDatabase::create().await,
            settings,
        }
    }

    /// As after the admin's OAuth callback: the simulator's tokens stored in the database.
    async fn authorized() -> Self {
        Self::authorized_with(SimConfig::default()).await
    }

    async fn authorized_with(config: SimConfig) -> Self {
        let harness = Self::with(config, Duration::from_secs(10)).await;
        let pair = harness.sim.issue_tokens();
        harness
            .store(&TokenSet {
                access_token: pair.access_token.into(),
                refresh_token: Some(pair.refresh_token.into()),
                expires_at: Utc::now() + chrono::Duration::seconds(pair.expires_in as i64),
            })
            .await;
        harness
    }

    fn cipher(&self) -> Sealer {
        self.settings.token_sealer().unwrap()
    }

    /// A token manager of its own, as another process sharing the database would have.
    fn tokens(&self) -> TokenManager {
        let oauth = OAuthClient::new(&self.settings).unwrap();
        TokenManager::new(self.db.pool.clone(), self.cipher(), oauth)
    }

    /// A client of its own (own token manager, own view of the budget), as in another
    /// process, for urgent work.
    fn client(&self) -> Work {
        self.client_for(Urgency::Urgent)
    }

    fn client_for(&self, urgency: Urgency) -> Work {
        RemoteLockClient::new(&self.settings, self.tokens())
            .unwrap()
            .for_work(urgency)
    }

    async fn store(&self, tokens: &TokenSet) {
        self.tokens().save(tokens, None, None).await.unwrap();
    }

    async fn stored_row(&self) -> StoredRow {
        sqlx::query_as(
            "SELECT access_token_enc, refresh_token_enc, access_expires_at, refreshed_at
             FROM remotelock_authorization",
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    fn token_requests(&self) -> usize {
        self.api_requests("/oauth/token").len()
    }

    /// `(method, status)` of each request whose path starts with `prefix`.
    fn api_requests(&self, prefix: &str) -> Vec<(Method, Option<u16>)> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .map(|r| (r.method, r.status))
            .collect()
    }

    fn lock_in_new_york(&self) -> LockId {
        let seed = self.sim.seed();
        let zone: TimeZone = "America/New_York".parse().unwrap();
        let new_york = seed
            .locations
            .iter()
            .find(|l| l.time_zone == zone.tz())
            .expect("a seeded location in New York");
        let lock = seed
            .locks
            .iter()
            .find(|l| l.location_id == new_york.id)
            .expect("a seeded lock in New York");
        LockId::parse(lock.id.clone()).unwrap()
    }
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    access_token_enc: Vec<u8>,
    refresh_token_enc: Option<Vec<u8>>,
    access_expires_at: DateTime<Utc>,
    refreshed_at: Option<DateTime<Utc>>,
}

/// A booking on the minute, PIN from 15 minutes before to 5 minutes after, in New York.
fn new_york_window(hours_ahead: i64) -> LockLocalWindow {
    let start = (Utc::now() + chrono::Duration::hours(hours_ahead))
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap();
    BookingWindow::new(start, start + chrono::Duration::minutes(90))
        .unwrap()
        .pin_validity(Duration::from_secs(15 * 60), Duration::from_secs(5 * 60))
        .in_zone("America/New_York".parse().unwrap())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn lists_the_account_locations_and_locks() {
    let h = Harness::authorized().await;
    let client = h.client();
    let seed = h.sim.seed();

    assert_eq!(client.account().await.unwrap().id, seed.account_id);
    let locations = client.locations().await.unwrap();
    assert_eq!(locations.len(), seed.locations.len());
    for location in &locations {
        let seeded = seed
            .locations
            .iter()
            .find(|l| l.id == location.id.as_str())
            .unwrap();
        assert_eq!(location.time_zone.tz(), seeded.time_zone);
    }
    let locks = client.locks().await.unwrap();
    assert_eq!(locks.len(), seed.locks.len());
    let lock = client.device(&h.lock_in_new_york()).await.unwrap();
    assert!(lock.device_type.is_lock());
    assert!(lock.power_level.is_some());
}

#[tokio::test]
async fn creates_a_guest_and_grants_a_lock_with_the_local_window() {
    let h = Harness::authorized().await;
    let client = h.client();
    let lock = h.lock_in_new_york();
    let window = new_york_window(72);
    let pin = Pin::parse("482193").unwrap();

    let guest = client
        .create_access_guest(&NewAccessGuest {
            name: "lockbridge booking lc-1001",
            email: Some("ada@example.edu"),
            pin: &pin,
            window: &window,
        })
        .await
        .unwrap();
    assert_eq!(guest.status, GuestStatus::Upcoming);
    assert_eq!(guest.pin.as_ref(), Some(&pin));
    assert_eq!(
        (guest.starts_at, guest.ends_at),
        (window.starts_at, window.ends_at)
    );
    let access = client.grant_lock(&guest.id, &lock).await.unwrap();
    assert_eq!(access.accessible_id, lock);
    assert_eq!(access.access_person_id, guest.id);

    // What RemoteLock holds: the wall-clock window in the lock's zone, and the grant.
    let stored = h
        .sim
        .guests()
        .into_iter()
        .find(|g| g.id == guest.id.as_str())
        .unwrap();
    assert_eq!(
        (stored.starts_at, stored.ends_at),
        (window.starts_at, window.ends_at)
    );
    assert_eq!(stored.pin.as_deref(), Some("482193"));
    let granted: Vec<_> = h
        .sim
        .accesses()
        .into_iter()
        .filter(|a| a.access_person_id == guest.id.as_str())
        .collect();
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].accessible_id, lock.as_str());
    assert_eq!(granted[0].accessible_type, "lock");

    let listed = client.accesses(&guest.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, access.id);
}

#[tokio::test]
async fn moves_reissues_revokes_and_deactivates_a_guest() {
    let h = Harness::authorized().await;
    let client = h.client();
    let lock = h.lock_in_new_york();
    let pin = Pin::parse("731946").unwrap();
    let guest = client
        .create_access_guest(&NewAccessGuest {
            name: "lockbridge booking lc-1002",
            email: None,
            pin: &pin,
            window: &new_york_window(48),
        })
        .await
        .unwrap();
    let access = client.grant_lock(&guest.id, &lock).await.unwrap();

    let moved = new_york_window(96);
    let new_pin = Pin::parse("615283").unwrap();
    let updated = client
        .update_access_guest(
            &guest.id,
            &GuestUpdate {
                window: Some(&moved),
                pin: Some(&new_pin),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.starts_at, updated.ends_at),
        (moved.starts_at, moved.ends_at)
    );
    assert_eq!(updated.pin.as_ref(), Some(&new_pin));

    client.revoke_access(&guest.id, &access.id).await.unwrap();
    assert!(client.accesses(&guest.id).await.unwrap().is_empty());
    client.deactivate_access_guest(&guest.id).await.unwrap();
    let read_back = client.access_guest(&guest.id).await.unwrap();
    assert_eq!(read_back.status, GuestStatus::Deactivated);
    let stored = h
        .sim
        .guests()
        .into_iter()
        .find(|g| g.id == guest.id.as_str());
    assert_eq!(stored.unwrap().status, PersonStatus::Deactivated);

    let missing = GuestId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    let error = client.access_guest(&missing).await.unwrap_err();
    assert!(
        matches!(error, RemoteLockError::NotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_not_repeated_and_can_be_found() {
    let h = Harness::authorized().await;
    let client = h.client();
    h.sim
        .inject(Fault::new("/access_persons", FaultKind::DropResponseAfterCommit).on(Method::POST));
    let name = "lockbridge booking lc-1003";
    let pin = Pin::parse("902417").unwrap();
    let error = client
        .create_access_guest(&NewAccessGuest {
            name,
            email: None,
            pin: &pin,
            window: &new_york_window(24),
        })
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(
        h.api_requests("/access_persons").len(),
        1,
        "a POST is never retried by the client"
    );

    // Deactivated guests are found too: RemoteLock lists only live ones unless asked.
    let found = client.find_access_guests(name).await.unwrap();
    assert_eq!(found.len(), 1);
    client.deactivate_access_guest(&found[0].id).await.unwrap();
    let second_pin = Pin::parse("517302").unwrap();
    let second = client
        .create_access_guest(&NewAccessGuest {
            name,
            email: None,
            pin: &second_pin,
            window: &new_york_window(24),
        })
        .await
        .unwrap();
    let lookups_before = h.api_requests("/access_persons?").len();
    let found = client.find_access_guests(name).await.unwrap();
    assert_eq!(
        h.api_requests("/access_persons?").len() - lookups_before,
        1,
        "a lookup is one bounded request, not a walk through the account"
    );
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].id, second.id, "newest first");
    assert_eq!(found[1].status, GuestStatus::Deactivated);
    assert!(
        client
            .find_access_guests("lockbridge booking lc-9999")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_new_pair_stored_encrypted() {
    let h = Harness::authorized().await;
    let before = h.stored_row().await;
    let old_refresh = h
        .cipher()
        .open_secret(before.refresh_token_enc.as_deref().unwrap())
        .unwrap();
    h.sim.expire_access_tokens();

    h.client().locks().await.unwrap();

    assert_eq!(h.token_requests(), 1);
    // Refused once (the simulator answers 403, as RemoteLock's docs say), then answered.
    let statuses: Vec<_> = h
        .api_requests("/devices")
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(statuses, [Some(403), Some(200)]);

    let after = h.stored_row().await;
    assert!(after.refreshed_at.is_some());
    assert!(after.access_expires_at > Utc::now() + chrono::Duration::minutes(60));
    let access = h.cipher().open_secret(&after.access_token_enc).unwrap();
    let refresh_enc = after.refresh_token_enc.unwrap();
    let refresh = h.cipher().open_secret(&refresh_enc).unwrap();
    assert_ne!(
        refresh.expose_secret(),
        old_refresh.expose_secret(),
        "rotated"
    );
    assert!(!contains(&after.access_token_enc, access.expose_secret()));
    assert!(!contains(&refresh_enc, refresh.expose_secret()));

    // The stored pair is the live one: another process uses it without refreshing.
    h.client().account().await.unwrap();
    assert_eq!(h.token_requests(), 1);
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_the_call() {
    let h = Harness::unauthorized().await;
    let pair = h.sim.issue_tokens();
    h.store(&TokenSet {
        access_token: pair.access_token.into(),
        refresh_token: Some(pair.refresh_token.into()),
        expires_at: Utc::now() + chrono::Duration::minutes(2),
    })
    .await;
    let client = h.client();

    let calls = join_all((0..3).map(|_| client.account())).await;
    assert!(calls.iter().all(Result::is_ok), "{calls:?}");

    assert_eq!(h.token_requests(), 1);
    assert!(
        h.api_requests("/account").iter().all(|r| r.1 == Some(200)),
        "no call went out with the old token"
    );
}

#[tokio::test]
async fn concurrent_callers_in_two_processes_refresh_once() {
    let h = Harness::authorized().await;
    h.sim.expire_access_tokens();
    // A slow token endpoint: every caller has sent the dead token before the refresh is done.
    h.sim.inject(Fault::new(
        "/oauth/token",
        FaultKind::Latency(Duration::from_millis(500)),
    ));
    let (first, second) = (h.client(), h.client());

    let calls = join_all(
        [&first, &second, &first, &second, &first, &second]
            .into_iter()
            .map(|client| client.locations()),
    )
    .await;

    assert!(calls.iter().all(Result::is_ok), "{calls:?}");
    let refused = h
        .api_requests("/locations")
        .iter()
        .filter(|r| r.1 == Some(403))
        .count();
    assert!(refused >= 2, "the callers raced: {refused} refused");
    assert_eq!(
        h.token_requests(),
        1,
        "rotating refresh tokens: one refresh"
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_transient_and_not_retried() {
    let h = Harness::with_timeout(Duration::from_secs(1)).await;
    let pair = h.sim.issue_tokens();
    h.store(&TokenSet {
        access_token: pair.access_token.into(),
        refresh_token: Some(pair.refresh_token.into()),
        expires_at: Utc::now() + chrono::Duration::hours(2),
    })
    .await;
    let client = h.client();

    h.sim
        .inject(Fault::new("/devices", FaultKind::Status(503)).on(Method::GET));
    let error = client.locks().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.retry_after(), None);
    assert_eq!(h.api_requests("/devices"), [(Method::GET, Some(503))]);

    h.sim
        .inject(Fault::new("/locations", FaultKind::Timeout).on(Method::GET));
    let error = client.locations().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");

    h.sim.inject(Fault::new("/account", FaultKind::Status(402)));
    let error = client.account().await.unwrap_err();
    assert!(!error.is_transient());
    assert!(
        matches!(&error, RemoteLockError::Rejected { status, .. } if status.as_u16() == 402),
        "{error:?}"
    );

    // Nothing is left broken: the next call goes through.
    client.locks().await.unwrap();
}

#[tokio::test]
async fn a_rate_limited_call_is_transient_with_retry_after() {
    let h = Harness::authorized().await;
    h.sim.inject(Fault::new("/devices", FaultKind::RateLimit));

    let error = h.client().locks().await.unwrap_err();

    assert!(error.is_transient(), "{error:?}");
    let wait = error
        .retry_after()
        .expect("retry_after from X-RateLimit-Reset");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(61),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_pin_held_by_another_guest_is_reported_as_taken() {
    let h = Harness::authorized().await;
    let client = h.client();
    let pin = Pin::parse("548213").unwrap();
    let window = new_york_window(24);
    let guest = |name| NewAccessGuest {
        name,
        email: None,
        pin: &pin,
        window: &window,
    };
    client
        .create_access_guest(&guest("lockbridge booking lc-1"))
        .await
        .unwrap();

    let error = client
        .create_access_guest(&guest("lockbridge booking lc-2"))
        .await
        .unwrap_err();

    assert!(error.is_pin_taken(), "{error:?}");
    assert!(!error.is_transient());
    assert!(!format!("{error:?} {error}").contains("548213"));
}

#[tokio::test]
async fn without_a_stored_authorization_calls_are_not_authorized() {
    let h = Harness::unauthorized().await;

    let error = h.client().locks().await.unwrap_err();

    assert!(
        matches!(
            error,
            RemoteLockError::NotAuthorized(NotAuthorized::Missing)
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert!(h.sim.requests().is_empty(), "nothing reached RemoteLock");
}

#[tokio::test]
async fn a_revoked_authorization_is_not_authorized() {
    let h = Harness::authorized().await;
    let stored = h.stored_row().await;
    let refresh = h
        .cipher()
        .open_secret(stored.refresh_token_enc.as_deref().unwrap())
        .unwrap();
    // The account owner removes lockbridge in RemoteLock: the whole grant dies.
    let revoked = reqwest::Client::new()
        .post(h.sim.base_url().join("oauth/revoke").unwrap())
        .form(&[
            ("client_id", h.settings.client_id.as_str()),
            ("client_secret", h.settings.client_secret.expose_secret()),
            ("token", refresh.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());

    let error = h.client().locks().await.unwrap_err();

    assert!(
        matches!(
            error,
            RemoteLockError::NotAuthorized(NotAuthorized::Revoked { .. })
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(h.token_requests(), 1);
}

#[tokio::test]
async fn the_admin_flow_authorizes_and_names_the_account() {
    let h = Harness::unauthorized().await;
    let oauth = OAuthClient::new(&h.settings).unwrap();
    let authorize = oauth.authorize_url("state-4711");
    assert_eq!(authorize.path(), "/oauth/authorize");

    // The user approves on RemoteLock's page, which redirects to our callback with the code.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorize.clone()).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let mut approval: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    approval.push(("decision".to_owned(), "approve".to_owned()));
    let mut page_url = authorize.clone();
    page_url.set_query(None);
    let redirect = http.post(page_url).form(&approval).send().await.unwrap();
    let location: url::Url = redirect.headers()["location"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        location
            .as_str()
            .starts_with(h.settings.redirect_url.as_str())
    );
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("state-4711"));
    let code = param("code").expect("an authorization code");

    let tokens = oauth.exchange_code(&code).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    assert!(!format!("{tokens:?}").contains(tokens.access_token.expose_secret()));
    let manager = TokenManager::new(h.db.pool.clone(), h.cipher(), oauth.clone());
    manager.save(&tokens, None, None).await.unwrap();
    let client = RemoteLockClient::new(&h.settings, manager.clone()).unwrap();
    let account = client.for_work(Urgency::Urgent).account().await.unwrap();
    manager.record_account(&account).await.unwrap();

    let (id, name): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT account_id, account_name FROM remotelock_authorization")
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(id.as_deref(), Some(h.sim.seed().account_id.as_str()));
    assert_eq!(name, Some(account.name));

    // A code is single-use: a second exchange is refused, and that is not a revocation.
    let error = oauth.exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(error, RemoteLockError::TokenRefused { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_403_that_survives_a_refresh_is_a_refusal_not_a_lost_authorization() {
    let h = Harness::authorized().await;
    let client = h.client();
    // Twice: once for the stored token, once for the freshly refreshed one.
    h.sim
        .inject(Fault::new("/account", FaultKind::Status(403)).times(2));
    let error = client.account().await.unwrap_err();
    assert!(
        matches!(&error, RemoteLockError::Rejected { status, .. } if status.as_u16() == 403),
        "{error:?}"
    );
    assert!(!error.is_transient());
    // The authorization itself is fine: the next call goes through.
    client.account().await.expect("still authorized");
}

async fn budget_remaining(h: &Harness) -> Option<i32> {
    sqlx::query_scalar("SELECT remaining FROM remotelock_budget")
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn routine_work_leaves_the_urgent_share_and_no_one_meets_a_429() {
    // 20 a window: a reserve of 1 and an urgent share of 2 (remotelock/budget.rs).
    let h = Harness::authorized_with(SimConfig {
        rate_limit_per_minute: 20,
        ..SimConfig::default()
    })
    .await;
    // Two processes' clients share the one budget.
    let routine = [
        h.client_for(Urgency::Routine),
        h.client_for(Urgency::Routine),
    ];
    let mut sent = 0;
    let refusal = loop {
        match routine[sent % 2].account().await {
            Ok(_) => sent += 1,
            Err(error) => break error,
        }
        assert!(sent <= 20, "routine work spent the whole window");
    };
    assert_eq!(sent, 17, "all but the reserve and the urgent share");
    assert!(refusal.is_rate_limited(), "{refusal:?}");
    let wait = refusal.retry_after().expect("when to try again");
    assert!(wait <= Duration::from_secs(61), "{wait:?}");
    assert_eq!(budget_remaining(&h).await, Some(3));

    let urgent = h.client();
    urgent.account().await.expect("the urgent share");
    urgent.account().await.expect("the urgent share");
    let error = urgent.account().await.unwrap_err();
    assert!(
        error.is_rate_limited(),
        "the reserve is no one's: {error:?}"
    );

    let answers = h.api_requests("/account");
    assert_eq!(answers.len(), 19, "nothing was sent without budget");
    assert!(
        answers.iter().all(|(_, status)| *status == Some(200)),
        "{answers:?}"
    );
}

#[tokio::test]
async fn requests_someone_else_makes_on_the_account_lower_our_remaining() {
    let h = Harness::authorized().await;
    let client = h.client_for(Urgency::Routine);
    client.account().await.unwrap();
    assert_eq!(budget_remaining(&h).await, Some(119));

    // Another integration on the same account, unknown to lockbridge.
    let other = h.sim.issue_tokens();
    let http = reqwest::Client::new();
    for _ in 0..30 {
        let answer = http
            .get(h.sim.base_url().join("account").unwrap())
            .bearer_auth(&other.access_token)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }
    client.account().await.unwrap();
    assert_eq!(
        budget_remaining(&h).await,
        Some(120 - 32),
        "re-synchronised from X-RateLimit-Remaining"
    );
}
