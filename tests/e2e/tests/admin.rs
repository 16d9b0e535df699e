//! The admin JSON API (design §3.4) over real HTTP, against real PostgreSQL and RabbitMQ and
//! the RemoteLock simulator: the OAuth round trip through the browser's redirects, the lock
//! list, links and their refusals (each leaving the database as it was), and the API token.

use lockbridge_e2e::{
    TestBroker, TestDatabase,
    admin_api::{self, API_TOKEN, AdminClient, CALLBACK_PATH},
    services::{Running, TOKEN_ENCRYPTION_KEY},
};
use lockbridge_remotelock::TOKEN_KEY;
use lockbridge_sealing::Sealer;
use remotelock_sim::SimHandle;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::PgPool;

struct Admin {
    db: TestDatabase,
    _broker: TestBroker,
    _app: Running,
    sim: SimHandle,
    api: AdminClient,
}

impl Admin {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let broker = TestBroker::create().await;
        let (app, sim) = admin_api::start(&db, &broker).await;
        catalogue(&db.pool).await;
        Self {
            api: AdminClient::new(app.addr),
            db,
            _broker: broker,
            _app: app,
            sim,
        }
    }

    async fn authorized() -> Self {
        let admin = Self::start().await;
        admin.api.authorize().await;
        admin
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.api.call(self.api.request(Method::GET, path)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.api.call(self.api.request(Method::DELETE, path)).await
    }

    /// The seeded locks' ids, in the simulator's order.
    fn locks(&self) -> Vec<String> {
        self.sim.seed().locks.into_iter().map(|l| l.id).collect()
    }

    /// Every link as `(space_id, lock_id, lock_name)`.
    async fn links(&self) -> Vec<(String, String, String)> {
        sqlx::query_as("SELECT space_id, lock_id, lock_name FROM lock_links ORDER BY space_id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    async fn stored_authorizations(&self) -> i64 {
        count(&self.db.pool, "remotelock_authorization").await
    }
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// One location with a room of each kind: two bookable as a whole, a container, a seat.
async fn catalogue(pool: &PgPool) {
    sqlx::raw_sql(
        "INSERT INTO locations (location_id, name, time_zone)
             VALUES ('main', 'Main Library', 'America/New_York');
         INSERT INTO categories (category_id, location_id, name)
             VALUES ('study', 'main', 'Study rooms');
         INSERT INTO spaces (space_id, category_id, name, kind) VALUES
             ('sp-101', 'study', 'Room 101', 'bookable_as_whole'),
             ('sp-102', 'study', 'Room 102', 'bookable_as_whole'),
             ('hall', 'study', 'Reading hall', 'container'),
             ('seat-1', 'study', 'Seat 1', 'seat');",
    )
    .execute(pool)
    .await
    .unwrap();
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, field: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(body["field"], field, "{body}");
}

#[tokio::test]
async fn authorization_round_trip_stores_the_tokens_encrypted() {
    let admin = Admin::start().await;
    let (status, before) = admin.get("/api/v1/remotelock/authorization").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(before["state"], "not_authorized");
    assert_eq!(before["account_name"], Value::Null);
    assert_eq!(before["links"], 0);

    let callback = admin.api.approved_callback().await;
    let state = Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .expect("the callback carries the state");
    assert!(state.len() >= 22, "at least 128 bits: {state}");
    let page = admin.api.browse(&callback).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(page.contains("Riverside Public Library"), "{page}");

    let (_, after) = admin.get("/api/v1/remotelock/authorization").await;
    let seed = admin.sim.seed();
    assert_eq!(after["state"], "authorized");
    assert_eq!(after["account_name"], "Riverside Public Library");
    assert_eq!(after["account_id"], seed.account_id);
    assert!(after["authorized_at"].is_string());
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(after["access_expires_at"].clone()).unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::minutes(100));
    assert_eq!(
        count(&admin.db.pool, "oauth_states").await,
        0,
        "state spent"
    );

    // The stored bytes decrypt to a token RemoteLock accepts, and do not contain it.
    let (access_enc, refresh_enc): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT access_token_enc, refresh_token_enc FROM remotelock_authorization")
            .fetch_one(&admin.db.pool)
            .await
            .unwrap();
    let cipher = Sealer::new(TOKEN_KEY, &SecretString::from(TOKEN_ENCRYPTION_KEY), None).unwrap();
    for stored in [&access_enc, &refresh_enc] {
        let token = cipher.open_secret(stored).unwrap();
        let token = token.expose_secret().as_bytes();
        assert!(token.len() >= 20);
        assert!(!stored.windows(token.len()).any(|w| w == token));
    }
    let access_token = cipher.open_secret(&access_enc).unwrap();
    let account = reqwest::Client::new()
        .get(admin.sim.base_url().join("account").unwrap())
        .bearer_auth(access_token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), StatusCode::OK);

    // The same callback again: its state is spent, and the authorization stays as it was.
    let replay = admin.api.browse(&callback).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let (_, unchanged) = admin.get("/api/v1/remotelock/authorization").await;
    assert_eq!(unchanged["authorized_at"], after["authorized_at"]);
}

#[tokio::test]
async fn callback_with_a_wrong_missing_or_expired_state_stores_nothing() {
    let admin = Admin::start().await;
    let callback = admin.api.approved_callback().await;
    let mut url = Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let code = &pairs.iter().find(|(k, _)| k == "code").unwrap().1;

    url.query_pairs_mut()
        .clear()
        .append_pair("code", code)
        .append_pair("state", "forged-state");
    let wrong = admin.api.browse(url.as_str()).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("unknown"));

    url.query_pairs_mut().clear().append_pair("code", code);
    let missing = admin.api.browse(url.as_str()).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    assert_eq!(admin.stored_authorizations().await, 0);
    assert_eq!(
        count(&admin.db.pool, "oauth_states").await,
        1,
        "the real state waits"
    );

    sqlx::query("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
        .execute(&admin.db.pool)
        .await
        .unwrap();
    let expired = admin.api.browse(&callback).await;
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    assert_eq!(admin.stored_authorizations().await, 0);
    assert_eq!(
        count(&admin.db.pool, "oauth_states").await,
        0,
        "spent anyway"
    );
    let (_, state) = admin.get("/api/v1/remotelock/authorization").await;
    assert_eq!(state["state"], "not_authorized");
}

#[tokio::test]
async fn a_refusal_at_remotelock_is_shown_and_stores_nothing() {
    let admin = Admin::start().await;
    let callback = admin.api.approved_callback().await;
    let mut url = Url::parse(&callback).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    url.query_pairs_mut()
        .clear()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "<b>The user said no</b>")
        .append_pair("state", &state);
    let denied = admin.api.browse(url.as_str()).await;
    assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
    let page = denied.text().await.unwrap();
    assert!(page.contains("access_denied"), "{page}");
    assert!(page.contains("&lt;b&gt;"), "quoted text is escaped: {page}");
    assert_eq!(admin.stored_authorizations().await, 0);
}

#[tokio::test]
async fn locks_are_listed_with_battery_connectivity_and_linked_space() {
    let admin = Admin::authorized().await;
    let locks = admin.locks();
    let (status, _) = admin.api.link("sp-101", &locks[0]).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = admin.get("/api/v1/locks").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body["locks"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    let lock = |id: &str| listed.iter().find(|l| l["lock_id"] == id).unwrap();

    let linked = lock(&locks[0]);
    assert_eq!(linked["name"], "Study Room 101");
    assert_eq!(linked["power_level"], 87);
    assert_eq!(linked["connected"], true);
    assert!(linked["connected_at"].is_string());
    assert_eq!(linked["location"]["name"], "Riverside Main");
    assert_eq!(linked["location"]["time_zone"], "America/New_York");
    assert_eq!(
        linked["linked_space"],
        json!({"space_id": "sp-101", "name": "Room 101"})
    );

    let low_battery = lock(&locks[2]);
    assert_eq!(low_battery["power_level"], 12);
    assert_eq!(low_battery["linked_space"], Value::Null);
    let offline = lock(&locks[3]);
    assert_eq!(offline["connected"], false);
    assert_eq!(offline["location"]["time_zone"], "Europe/Berlin");
}

#[tokio::test]
async fn links_follow_the_one_to_one_and_bookable_as_whole_rules() {
    let admin = Admin::authorized().await;
    let locks = admin.locks();

    let (status, linkable) = admin.get("/api/v1/spaces?linkable=true").await;
    assert_eq!(status, StatusCode::OK);
    let ids = |body: &Value| -> Vec<String> {
        body["spaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["space_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&linkable), ["sp-101", "sp-102"]);
    assert_eq!(linkable["spaces"][0]["category"]["name"], "Study rooms");
    assert_eq!(linkable["spaces"][0]["location"]["name"], "Main Library");

    let (status, link) = admin.api.link("sp-101", &locks[0]).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["space_id"], "sp-101");
    assert_eq!(link["space_name"], "Room 101");
    assert_eq!(link["lock_id"], locks[0].as_str());
    assert_eq!(link["lock_name"], "Study Room 101");
    let linked = vec![(
        "sp-101".to_owned(),
        locks[0].clone(),
        "Study Room 101".to_owned(),
    )];
    assert_eq!(admin.links().await, linked);

    let (_, linkable) = admin.get("/api/v1/spaces?linkable=true").await;
    assert_eq!(ids(&linkable), ["sp-102"]);
    let (_, all) = admin.get("/api/v1/spaces").await;
    assert_eq!(all["spaces"].as_array().unwrap().len(), 4);
    let room = all["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["space_id"] == "sp-101")
        .unwrap();
    assert_eq!(room["link"]["lock_id"], locks[0].as_str());

    // Each refusal names the field at fault and changes nothing.
    let refusals = [
        ("sp-102", locks[0].as_str(), StatusCode::CONFLICT, "lock_id"),
        (
            "sp-101",
            locks[1].as_str(),
            StatusCode::CONFLICT,
            "space_id",
        ),
        (
            "hall",
            locks[1].as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "space_id",
        ),
        (
            "seat-1",
            locks[1].as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "space_id",
        ),
        (
            "no-such-space",
            locks[1].as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "space_id",
        ),
        (
            "sp-102",
            "00000000-0000-4000-8000-000000000000",
            StatusCode::UNPROCESSABLE_ENTITY,
            "lock_id",
        ),
    ];
    for (space_id, lock_id, expected, field) in refusals {
        let (status, problem) = admin.api.link(space_id, lock_id).await;
        assert_problem(status, &problem, expected, field);
        assert_eq!(
            admin.links().await,
            linked,
            "after linking {space_id} to {lock_id}"
        );
    }
    let (_, seat) = admin.api.link("seat-1", &locks[1]).await;
    assert!(seat["detail"].as_str().unwrap().contains("seat"), "{seat}");
    let (_, taken) = admin.api.link("sp-102", &locks[0]).await;
    assert!(
        taken["detail"].as_str().unwrap().contains("sp-101"),
        "{taken}"
    );

    // Malformed bodies: every field named at once; not JSON at all.
    let (status, problem) = admin
        .api
        .call(
            admin
                .api
                .request(Method::POST, "/api/v1/links")
                .json(&json!({"space_id": "bad id", "lock_id": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["space_id", "lock_id"]);
    let (status, _) = admin
        .api
        .call(
            admin
                .api
                .request(Method::POST, "/api/v1/links")
                .body("space_id=sp-102"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(admin.links().await, linked);

    let (status, _) = admin.delete("/api/v1/links/sp-101").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = admin.delete("/api/v1/links/sp-101").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(admin.links().await.is_empty());
    // The lock is free again.
    let (status, _) = admin.api.link("sp-102", &locks[0]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn without_an_authorization_locks_and_links_say_to_authorize_first() {
    let admin = Admin::start().await;
    let lock = admin.locks().remove(0);
    let (status, problem) = admin.get("/api/v1/locks").await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "authorization");
    assert!(problem["detail"].as_str().unwrap().contains("authorize"));
    let (status, problem) = admin.api.link("sp-101", &lock).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "authorization");
    assert!(admin.links().await.is_empty());
}

#[tokio::test]
async fn remotelock_outage_is_a_503() {
    let admin = Admin::authorized().await;
    admin.sim.inject(
        remotelock_sim::Fault::new("/devices", remotelock_sim::FaultKind::Status(503)).times(2),
    );
    let (status, problem) = admin.get("/api/v1/locks").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    let lock = admin.locks().remove(0);
    let (status, _) = admin.api.link("sp-101", &lock).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(admin.links().await.is_empty());
}

#[tokio::test]
async fn the_authorization_cannot_be_removed_while_links_exist() {
    let admin = Admin::authorized().await;
    let lock = admin.locks().remove(0);
    let (status, _) = admin.api.link("sp-101", &lock).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, problem) = admin.delete("/api/v1/remotelock/authorization").await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "links");
    assert_eq!(admin.stored_authorizations().await, 1);
    let (_, state) = admin.get("/api/v1/remotelock/authorization").await;
    assert_eq!(state["state"], "authorized");
    assert_eq!(state["links"], 1);

    let (status, _) = admin.delete("/api/v1/links/sp-101").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = admin.delete("/api/v1/remotelock/authorization").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(admin.stored_authorizations().await, 0);
    let (_, state) = admin.get("/api/v1/remotelock/authorization").await;
    assert_eq!(state["state"], "not_authorized");
}

#[tokio::test]
async fn the_api_wants_the_admin_token_but_the_callback_and_health_do_not() {
    let admin = Admin::authorized().await;
    let api = &admin.api;
    let paths = [
        (Method::GET, "/api/v1/remotelock/authorization"),
        (Method::POST, "/api/v1/remotelock/authorization"),
        (Method::DELETE, "/api/v1/remotelock/authorization"),
        (Method::GET, "/api/v1/locks"),
        (Method::GET, "/api/v1/spaces?linkable=true"),
        (Method::POST, "/api/v1/links"),
        (Method::DELETE, "/api/v1/links/sp-101"),
    ];
    for (method, path) in paths {
        let url = api.url(path);
        for request in [
            api.http.request(method.clone(), &url),
            api.http.request(method.clone(), &url).bearer_auth("wrong"),
            api.http
                .request(method.clone(), &url)
                .bearer_auth(format!("{API_TOKEN}x")),
            api.http
                .request(method.clone(), &url)
                .basic_auth("admin", Some(API_TOKEN)),
        ] {
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
    }
    assert_eq!(admin.stored_authorizations().await, 1, "DELETE refused");
    assert_eq!(
        count(&admin.db.pool, "oauth_states").await,
        0,
        "POST refused"
    );

    for path in ["/healthz", "/readyz"] {
        let response = api.browse(&api.url(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // The callback answers the browser (here: refusing the missing state), not with a 401.
    let callback = api.browse(&api.url(CALLBACK_PATH)).await;
    assert_eq!(callback.status(), StatusCode::BAD_REQUEST);
}

impl Admin {
    async fn authorization(&self) -> Value {
        let (status, state) = self.get("/api/v1/remotelock/authorization").await;
        assert_eq!(status, StatusCode::OK, "{state}");
        state
    }

    /// Runs the OAuth flow; answers the status and text of the page the browser lands on.
    async fn reauthorize(&self) -> (StatusCode, String) {
        let callback = self.api.approved_callback().await;
        let landed = self.api.browse(&callback).await;
        (landed.status(), landed.text().await.unwrap())
    }

    /// RemoteLock fails the next `GET /account`.
    fn account_unreadable_once(&self) {
        self.sim.inject(remotelock_sim::Fault::new(
            "/account",
            remotelock_sim::FaultKind::Status(503),
        ));
    }

    /// The `/oauth/revoke` calls RemoteLock answered, by status.
    fn revocations(&self) -> Vec<Option<u16>> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oauth/revoke")
            .map(|r| r.status)
            .collect()
    }

    /// The ids of the locks `GET /api/v1/locks` lists: proof the stored tokens work.
    async fn listed_locks(&self) -> Vec<String> {
        let (status, body) = self.get("/api/v1/locks").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["locks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lock_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn reauthorizing_into_another_account_while_links_exist_is_refused_and_changes_nothing() {
    let admin = Admin::authorized().await;
    let seeded = admin.sim.seed().account_id;
    let (status, _) = admin.api.link("sp-101", &admin.locks()[0]).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = admin.authorization().await;

    let schools = admin.sim.add_account("Riverside Schools");
    admin.sim.approve_as(&schools);
    let (status, page) = admin.reauthorize().await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    for reason in [
        "Riverside Public Library",
        seeded.as_str(),
        "Riverside Schools",
        schools.as_str(),
        "1 space(s)",
        "DELETE /api/v1/links/",
        "kept its current authorization",
    ] {
        assert!(page.contains(reason), "{reason:?} missing: {page}");
    }

    // Nothing stored; the old tokens keep working; the refused ones are revoked.
    assert_eq!(admin.authorization().await, before);
    assert_eq!(admin.listed_locks().await, admin.locks());
    let revoked = admin.revocations();
    assert!(
        !revoked.is_empty() && revoked.iter().all(|s| *s == Some(200)),
        "{revoked:?}"
    );
    assert_eq!(admin.links().await.len(), 1);

    // The same account again is welcome, links and all.
    admin.sim.approve_as(&seeded);
    let (status, page) = admin.reauthorize().await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let after = admin.authorization().await;
    assert_eq!(after["account_id"], seeded);
    assert_eq!(after["account_name"], "Riverside Public Library");
    assert_ne!(after["authorized_at"], before["authorized_at"]);
    assert_eq!(admin.listed_locks().await, admin.locks());
}

#[tokio::test]
async fn after_unlinking_every_space_the_account_can_be_switched() {
    let admin = Admin::authorized().await;
    let (status, _) = admin.api.link("sp-101", &admin.locks()[0]).await;
    assert_eq!(status, StatusCode::CREATED);
    let schools = admin.sim.add_account("Riverside Schools");
    admin.sim.approve_as(&schools);
    let (status, _) = admin.reauthorize().await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = admin.delete("/api/v1/links/sp-101").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, page) = admin.reauthorize().await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Riverside Schools"), "{page}");
    let switched = admin.authorization().await;
    assert_eq!(switched["account_id"], schools);
    assert_eq!(switched["account_name"], "Riverside Schools");
    // The new account's (empty) lock list, not the old one's.
    assert!(admin.listed_locks().await.is_empty());
}

#[tokio::test]
async fn an_account_remotelock_does_not_name_is_refused_only_while_links_exist() {
    let admin = Admin::authorized().await;
    let (status, _) = admin.api.link("sp-101", &admin.locks()[0]).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = admin.authorization().await;

    admin.account_unreadable_once();
    let (status, page) = admin.reauthorize().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("did not say which account"), "{page}");
    assert_eq!(admin.authorization().await, before);
    assert_eq!(admin.listed_locks().await, admin.locks());
    assert!(!admin.revocations().is_empty());

    // Without links, the tokens are kept as before, the account left unnamed.
    let (status, _) = admin.delete("/api/v1/links/sp-101").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    admin.account_unreadable_once();
    let (status, page) = admin.reauthorize().await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("could not be read"), "{page}");
    let unnamed = admin.authorization().await;
    assert_eq!(unnamed["state"], "authorized");
    assert_eq!(unnamed["account_id"], Value::Null);
    assert_eq!(admin.listed_locks().await, admin.locks());
}
