//! The staff web UI (issue 8) in a real browser — headless Chromium over WebDriver — against
//! the admin service with real PostgreSQL, RabbitMQ and the RemoteLock simulator: signing in
//! (the same sentence for a wrong password and an unknown address, the lock-out, success and
//! sign-out), CSRF and role refusals (over plain HTTP, as a forger would send them), and an
//! admin's whole round: authorize through RemoteLock, link a space through the filtered form,
//! Remove Authorization disabled while the link exists, remove the link through its
//! confirmation, then remove the authorization. Then the rest of the UI: the Locks page's
//! warnings and the navigation's count, the Failures page's Retry and dead-letter counts, the
//! Settings page's lead time and grace read back from the simulator's guests (the most specific
//! winning), its PIN length and alert recipients, and the Reports' CSV files.
//!
//! Screenshots of the pages go to this test's output folder, and to
//! `LOCKBRIDGE_SCREENSHOTS` when set (`docs/screenshots` for the README's).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::Duration,
};

use admin::staff::{self, Email, Password, Role};
use lockbridge_e2e::{
    browser::Browser,
    system::{TestSystem, booking, unique_patron},
};
use remotelock_sim::SimConfig;
use reqwest::{StatusCode, header};
use secrecy::SecretString;
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

/// The admin service's UI with a signed-up admin (and, when asked, a staff user).
struct Ui {
    system: TestSystem,
    admin_email: String,
}

impl Ui {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&'static str, String)]) -> Self {
        let system = TestSystem::start_with(SimConfig::default(), extra).await;
        // Each test has its own database: the addresses need not differ between tests.
        let admin_email = "Admin@Riverside.example".to_owned();
        let ui = Self {
            system,
            admin_email,
        };
        ui.create_user(&ui.admin_email, Role::Admin).await;
        ui
    }

    async fn create_user(&self, email: &str, role: Role) {
        let email: Email = email.parse().expect("a valid email");
        let password = Password::new(SecretString::from(PASSWORD)).expect("long enough");
        staff::create_user(&self.system.db.pool, &email, &password, role)
            .await
            .expect("the user is stored");
    }

    fn url(&self, path: &str) -> String {
        self.system.admin.url(path)
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.system.db.pool)
            .await
            .expect("the query runs")
    }

    /// Polls until `n` failed sign-ins are recorded: the form's answer has arrived.
    async fn wait_for_failures(&self, n: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let failures = self
                .count("SELECT count(*) FROM staff_sign_in_failures")
                .await;
            if failures == n {
                return;
            }
            assert!(
                failures < n && tokio::time::Instant::now() < deadline,
                "{failures} failed sign-ins recorded, expected {n}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in through the browser's form.
    async fn sign_in(&self, browser: &Browser, email: &str, password: &str) {
        browser.goto(&self.url("/sign-in")).await;
        browser.fill("#email", email).await;
        browser.fill("#password", password).await;
        browser.click("form[action='/sign-in'] button").await;
    }
}

/// Where screenshots go: the test's output folder, and `LOCKBRIDGE_SCREENSHOTS` if set.
async fn screenshot(browser: &Browser, name: &str) {
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("staff-ui-screenshots")];
    if let Some(dir) = std::env::var_os("LOCKBRIDGE_SCREENSHOTS") {
        dirs.push(PathBuf::from(dir));
    }
    for dir in dirs {
        browser.screenshot(&dir, name).await;
    }
}

/// A browser-less client from `source` (a loopback address: each is its own client address).
struct HttpClient {
    http: reqwest::Client,
    cookies: Vec<String>,
}

impl HttpClient {
    fn from(source: IpAddr) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(source)
                .build()
                .expect("HTTP client"),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.join("; ")
    }

    /// Keeps the cookies a response sets (and forgets those it clears).
    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            if !pair.ends_with('=') {
                self.cookies.push(pair);
            }
        }
    }

    async fn get(&mut self, url: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(url)
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("the admin answers");
        self.keep_cookies(&response);
        (response.status(), response.text().await.unwrap())
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .http
            .post(url)
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("the admin answers");
        self.keep_cookies(&response);
        response
    }

    /// Signs in through the form as a browser would; answers the sign-in's response.
    async fn sign_in(&mut self, ui: &Ui, email: &str, password: &str) -> reqwest::Response {
        let (status, page) = self.get(&ui.url("/sign-in")).await;
        assert_eq!(status, StatusCode::OK);
        let csrf = csrf_of(&page);
        self.post(
            &ui.url("/sign-in"),
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &str) -> String {
    let start = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + r#"name="csrf" value=""#.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The response is a page with `status` that says `sentence`.
async fn assert_page(response: reqwest::Response, status: StatusCode, sentence: &str) {
    assert_eq!(response.status(), status, "{}", response.url());
    let page = response.text().await.unwrap();
    assert!(page.contains(sentence), "“{sentence}” in {page}");
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[tokio::test]
async fn sign_in_answers_alike_for_unknown_and_wrong_then_locks_out() {
    let ui = Ui::start().await;
    let other_email = "desk@riverside.example";
    ui.create_user(other_email, Role::Staff).await;
    let browser = Browser::start().await;

    ui.sign_in(&browser, &ui.admin_email, "not the password at all")
        .await;
    let wrong = browser
        .wait_for_text("The email or the password is not right.")
        .await;
    ui.wait_for_failures(1).await;
    screenshot(&browser, "sign-in-refused").await;
    ui.sign_in(&browser, "nobody@library.example", PASSWORD)
        .await;
    ui.wait_for_failures(2).await;
    let unknown = browser
        .wait_for_text("The email or the password is not right.")
        .await;
    assert_eq!(wrong, unknown, "the same page for an unknown address");

    // Five failures for the account, whatever the case of its address and wherever from
    // (two from another address): the right password is refused now, from anywhere.
    for failures in 3..=4 {
        ui.sign_in(&browser, &ui.admin_email.to_uppercase(), "still not it")
            .await;
        ui.wait_for_failures(failures).await;
    }
    let mut elsewhere = HttpClient::from(loopback(2));
    for _ in 0..2 {
        let refused = elsewhere.sign_in(&ui, &ui.admin_email, "wrong again").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    ui.sign_in(&browser, &ui.admin_email, PASSWORD).await;
    let locked = browser.wait_for_text("Too many failed sign-ins").await;
    screenshot(&browser, "sign-in-locked").await;
    let minutes: i64 = locked
        .split("try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the page says when: {locked}"));
    assert!((1..=15).contains(&minutes), "{locked}");
    let refused = elsewhere.sign_in(&ui, &ui.admin_email, PASSWORD).await;
    assert_page(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed sign-ins",
    )
    .await;
    assert_eq!(ui.count("SELECT count(*) FROM staff_sessions").await, 0);

    // Five failures from this address (four so far, and one more for any address): another
    // account is refused from here, and not from elsewhere.
    let mut here = HttpClient::from(loopback(1));
    let refused = here.sign_in(&ui, "someone@library.example", "guess").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = here.sign_in(&ui, other_email, PASSWORD).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is held back"
    );
    let other = elsewhere.sign_in(&ui, other_email, PASSWORD).await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
    assert_eq!(ui.count("SELECT count(*) FROM staff_sessions").await, 1);
}

#[tokio::test]
async fn signing_in_keeps_only_the_token_hash_and_signing_out_ends_the_session() {
    let ui = Ui::start().await;
    // The cookie's attributes, as the default settings send them.
    let mut http = HttpClient::from(loopback(1));
    let signed_in = http.sign_in(&ui, &ui.admin_email, PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[header::LOCATION], "/");
    let cookie = signed_in
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("lockbridge_session="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }

    let browser = Browser::start().await;
    browser.goto(&ui.url("/")).await;
    browser.wait_for_text("Sign in").await;
    assert!(browser.client().current_url().await.unwrap().path() == "/sign-in");
    screenshot(&browser, "sign-in").await;
    ui.sign_in(&browser, &ui.admin_email, PASSWORD).await;
    browser.wait_for_text("RemoteLock authorization").await;
    let header_text = browser.find("header").await.text().await.unwrap();
    assert!(
        header_text.contains(&format!("{} (admin)", ui.admin_email)),
        "{header_text}"
    );

    // The database holds the SHA-256 of the browser's token, not the token.
    let token = browser
        .client()
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == "lockbridge_session")
        .expect("the browser keeps the session cookie")
        .value()
        .to_owned();
    assert_eq!(
        ui.count(&format!(
            "SELECT count(*) FROM staff_sessions WHERE token_sha256 = sha256('{token}'::bytea)
               AND expires_at BETWEEN now() + interval '11 hours 59 minutes' AND now() + interval '12 hours'"
        ))
        .await,
        1
    );
    assert_eq!(
        ui.count(&format!(
            "SELECT count(*) FROM staff_sessions WHERE position('{token}'::bytea IN token_sha256) > 0"
        ))
        .await,
        0
    );

    browser.click("form[action='/sign-out'] button").await;
    browser.wait_for_text("You are signed out.").await;
    // The browser's session is gone; the other one (reqwest's) is not.
    assert_eq!(ui.count("SELECT count(*) FROM staff_sessions").await, 1);
    let mut stolen = HttpClient::from(loopback(1));
    stolen.cookies.push(format!("lockbridge_session={token}"));
    let (status, _) = stolen.get(&ui.url("/")).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "an ended session opens nothing"
    );
}

#[tokio::test]
async fn forged_posts_without_the_sessions_csrf_token_are_refused() {
    let ui = Ui::start().await;
    ui.system.authorize().await;
    ui.system.catalogue().await;
    let lock = ui.system.sim.seed().locks[0].id.clone();
    let mut http = HttpClient::from(loopback(1));
    assert_eq!(
        http.sign_in(&ui, &ui.admin_email, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, home) = http.get(&ui.url("/")).await;
    let csrf = csrf_of(&home);

    for forged in ["", "forged-token", &csrf[1..]] {
        let refused = http
            .post(
                &ui.url("/links"),
                &[("csrf", forged), ("space_id", "sp-101"), ("lock_id", &lock)],
            )
            .await;
        let sentence = "This form has expired or did not come from lockbridge";
        assert_page(refused, StatusCode::FORBIDDEN, sentence).await;
    }
    let no_field = http
        .post(
            &ui.url("/links"),
            &[("space_id", "sp-101"), ("lock_id", &lock)],
        )
        .await;
    assert_eq!(no_field.status(), StatusCode::FORBIDDEN);
    assert_eq!(ui.count("SELECT count(*) FROM lock_links").await, 0);
    let sign_out = http.post(&ui.url("/sign-out"), &[("csrf", "forged")]).await;
    assert_eq!(sign_out.status(), StatusCode::FORBIDDEN);
    assert_eq!(ui.count("SELECT count(*) FROM staff_sessions").await, 1);

    // Another site's sign-in form has no sign-in cookie to match.
    let mut stranger = HttpClient::from(loopback(3));
    let forged_sign_in = stranger
        .post(
            &ui.url("/sign-in"),
            &[
                ("csrf", "x"),
                ("email", &ui.admin_email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged_sign_in.status(), StatusCode::FORBIDDEN);

    // With the session's token the same form works: the refusals were the token's.
    let linked = http
        .post(
            &ui.url("/links"),
            &[("csrf", &csrf), ("space_id", "sp-101"), ("lock_id", &lock)],
        )
        .await;
    assert_eq!(linked.status(), StatusCode::SEE_OTHER);
    assert_eq!(ui.count("SELECT count(*) FROM lock_links").await, 1);
}

#[tokio::test]
async fn a_staff_account_sees_the_links_but_not_the_admin_pages() {
    let ui = Ui::start().await;
    ui.system.ready_with_link().await;
    let staff_email = "desk@riverside.example";
    ui.create_user(staff_email, Role::Staff).await;

    let browser = Browser::start().await;
    ui.sign_in(&browser, staff_email, PASSWORD).await;
    let home = browser
        .wait_for_text("Only admins can change the authorization and the links.")
        .await;
    assert!(home.contains("Study Room 101"), "the links table: {home}");
    assert!(
        browser
            .find_all("#authorize, #remove-authorization, #link-form")
            .await
            .is_empty()
    );
    browser.goto(&ui.url("/links/sp-101/remove")).await;
    browser
        .wait_for_text("This page is for admins: you are signed in with a staff account.")
        .await;

    let mut http = HttpClient::from(loopback(1));
    http.sign_in(&ui, staff_email, PASSWORD).await;
    let (status, _) = http.get(&ui.url("/links/sp-101/remove")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, home) = http.get(&ui.url("/")).await;
    let csrf = csrf_of(&home);
    for path in [
        "/links/sp-101/remove",
        "/remotelock/authorize",
        "/remotelock/authorization/remove",
    ] {
        let refused = http.post(&ui.url(path), &[("csrf", &csrf)]).await;
        assert_page(refused, StatusCode::FORBIDDEN, "This page is for admins").await;
    }
    assert_eq!(ui.count("SELECT count(*) FROM lock_links").await, 1);
    assert_eq!(
        ui.count("SELECT count(*) FROM remotelock_authorization")
            .await,
        1
    );
    assert_eq!(ui.count("SELECT count(*) FROM oauth_states").await, 0);
}

#[tokio::test]
async fn an_admin_authorizes_links_unlinks_and_removes_the_authorization_in_the_browser() {
    let ui = Ui::start().await;
    let system = &ui.system;
    system.catalogue().await;
    // A second location, in another zone, whose category and room the filters must hide.
    system
        .intake_api()
        .put_catalogue([
            (
                "/v1/locations/branch",
                json!({"name": "Berlin Branch", "time_zone": "Europe/Berlin"}),
            ),
            (
                "/v1/categories/group",
                json!({"location_id": "branch", "name": "Group rooms"}),
            ),
            (
                "/v1/spaces/g-201",
                json!({"category_id": "group", "name": "Group Room 201", "kind": "bookable_as_whole"}),
            ),
        ])
        .await;
    let patron = unique_patron();
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let (status, body) = system
        .put(
            "/v1/bookings/ui-1",
            &booking(
                "confirmed",
                &tomorrow.to_rfc3339(),
                &(tomorrow + chrono::Duration::hours(1)).to_rfc3339(),
                &patron,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let browser = Browser::start().await;
    ui.sign_in(&browser, &ui.admin_email, PASSWORD).await;
    browser
        .wait_for_text("lockbridge is not authorized with RemoteLock")
        .await;
    screenshot(&browser, "smart-locks-not-authorized").await;

    // Authorize: through the simulator's authorize page and back to this page.
    browser.click("#authorize").await;
    browser
        .wait_for_text("Authorize lockbridge-dev to use your account?")
        .await;
    screenshot(&browser, "remotelock-authorize-page").await;
    browser.click("#approve").await;
    let landed = browser
        .wait_for_text(
            "lockbridge now manages guests in the RemoteLock account “Riverside Public Library”.",
        )
        .await;
    let url = browser.client().current_url().await.unwrap();
    assert_eq!(
        (url.port(), url.path(), url.query()),
        (Some(system.admin.addr.port()), "/", None)
    );
    let seed = system.sim.seed();
    let account = browser.find("#account").await.text().await.unwrap();
    assert_eq!(
        account,
        format!("Riverside Public Library ({})", seed.account_id)
    );
    assert!(
        landed.contains("Working: the access token renews by itself"),
        "{landed}"
    );
    assert!(
        browser
            .find("#remove-authorization")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    let (_, stored) = system
        .admin_api()
        .call(
            system
                .admin_api()
                .request(reqwest::Method::GET, "/api/v1/remotelock/authorization"),
        )
        .await;
    assert_eq!(stored["account_id"], seed.account_id);

    // The lists: only whole rooms without a lock, narrowed by location and category.
    let all_locks: Vec<String> = seed.locks.iter().map(|l| l.id.clone()).collect();
    assert_eq!(
        browser.options("#space").await,
        ["g-201", "sp-101", "sp-102"]
    );
    assert_eq!(browser.options("#lock").await.len(), all_locks.len());
    browser.select("#location", "main").await;
    assert_eq!(browser.options("#category").await, ["rooms"]);
    assert_eq!(browser.options("#space").await, ["sp-101", "sp-102"]);
    browser.select("#location", "branch").await;
    assert_eq!(browser.options("#category").await, ["group"]);
    assert_eq!(browser.options("#space").await, ["g-201"]);
    // Without the script the same choice reloads the page, filtered by the server.
    browser
        .goto(&ui.url("/?location=main&category=rooms"))
        .await;
    browser
        .wait_for_text("Link a space with a smart lock")
        .await;
    let selected = browser
        .find("#category option[selected]")
        .await
        .attr("value")
        .await
        .unwrap();
    assert_eq!(selected.as_deref(), Some("rooms"));
    assert_eq!(browser.options("#space").await, ["sp-101", "sp-102"]);

    browser.select("#space", "sp-101").await;
    browser.select("#lock", &all_locks[0]).await;
    browser.click("#link-button").await;
    browser
        .wait_for_text(&format!(
            "Study Room 101 is now linked with the lock “{}”; 1 upcoming booking will get a PIN.",
            seed.locks[0].name
        ))
        .await;
    let row = browser
        .find("#links tr[data-space='sp-101']")
        .await
        .text()
        .await
        .unwrap();
    for cell in [
        "Riverside Main",
        "Study rooms",
        "Study Room 101",
        seed.locks[0].name.as_str(),
        &format!("{}%", seed.locks[0].power_level),
        "(America/New_York)",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    assert_eq!(
        ui.count("SELECT count(*) FROM lock_links WHERE space_id = 'sp-101'")
            .await,
        1
    );
    system
        .wait_for_pin("ui-1", "issued", Duration::from_secs(60))
        .await;
    // Taken: neither the room nor the lock is offered again.
    browser.goto(&ui.url("/")).await;
    assert_eq!(browser.options("#space").await, ["g-201", "sp-102"]);
    assert!(!browser.options("#lock").await.contains(&all_locks[0]));
    let remove = browser.find("#remove-authorization").await;
    assert!(
        !remove.is_enabled().await.unwrap(),
        "disabled while a link exists"
    );
    let reason = browser.find("#removal-blocked").await.text().await.unwrap();
    assert_eq!(
        reason,
        "Remove Authorization is unavailable while 1 space is linked to a lock: remove the links first."
    );
    assert_eq!(
        remove.attr("aria-describedby").await.unwrap().as_deref(),
        Some("removal-blocked")
    );
    screenshot(&browser, "smart-locks").await;

    // Remove the link, through a confirmation that says what it affects.
    browser.click("#links tr[data-space='sp-101'] a").await;
    let confirmation = browser
        .wait_for_text("Remove the link of Study Room 101?")
        .await;
    assert!(
        confirmation.contains("1 upcoming booking of this space keeps its PIN"),
        "{confirmation}"
    );
    screenshot(&browser, "remove-link").await;
    browser.click("#confirm-remove").await;
    browser
        .wait_for_text("The link of space sp-101 is removed")
        .await;
    browser
        .wait_for_text("No space is linked with a lock yet.")
        .await;
    assert_eq!(ui.count("SELECT count(*) FROM lock_links").await, 0);
    assert_eq!(
        system.get_booking("ui-1").await["pin"]["state"],
        "issued",
        "the PIN stays"
    );

    // Now Remove Authorization works.
    let remove = browser.find("#remove-authorization").await;
    assert!(remove.is_enabled().await.unwrap());
    assert!(browser.find_all("#removal-blocked").await.is_empty());
    remove.click().await.unwrap();
    browser
        .wait_for_text("The RemoteLock authorization is removed")
        .await;
    browser
        .wait_for_text("lockbridge is not authorized with RemoteLock")
        .await;
    assert_eq!(
        ui.count("SELECT count(*) FROM remotelock_authorization")
            .await,
        0
    );
}

#[tokio::test]
async fn the_session_cookie_drops_secure_when_configured_for_local_http() {
    let ui = Ui::start_with(&[("admin.cookie_secure", "false".to_owned())]).await;
    let mut http = HttpClient::from(loopback(1));
    let signed_in = http.sign_in(&ui, &ui.admin_email, PASSWORD).await;
    let cookie = signed_in.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("lockbridge_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn refused_links_unknown_pages_and_incomplete_forms_answer_with_a_sentence() {
    let ui = Ui::start().await;
    let lock = ui.system.ready_with_link().await;
    let other_lock = ui.system.sim.seed().locks[1].id.clone();
    let mut http = HttpClient::from(loopback(1));
    http.sign_in(&ui, &ui.admin_email, PASSWORD).await;
    let (_, home) = http.get(&ui.url("/")).await;
    let csrf = csrf_of(&home);

    // Each refusal lands back on the page with its sentence, and links nothing.
    for (space, lock, sentence) in [
        (
            "sp-102",
            lock.as_str(),
            format!("Lock {lock} is already linked to space sp-101: unlink that space first."),
        ),
        (
            "hall",
            other_lock.as_str(),
            "Space hall is a container: only spaces bookable as a whole can have a lock."
                .to_owned(),
        ),
        (
            "seat-7",
            other_lock.as_str(),
            "Space seat-7 is a seat: only spaces bookable as a whole can have a lock.".to_owned(),
        ),
        (
            "sp-102",
            "",
            "Choose a space and a lock to link.".to_owned(),
        ),
    ] {
        let answer = http
            .post(
                &ui.url("/links"),
                &[("csrf", &csrf), ("space_id", space), ("lock_id", lock)],
            )
            .await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let (_, page) = http.get(&ui.url("/")).await;
        assert!(page.contains(&sentence), "“{sentence}” in {page}");
        let (_, again) = http.get(&ui.url("/")).await;
        assert!(!again.contains(&sentence), "a notice is shown once");
    }
    assert_eq!(ui.count("SELECT count(*) FROM lock_links").await, 1);

    let unknown = http.http.get(ui.url("/no/such/page")).send().await.unwrap();
    assert_page(
        unknown,
        StatusCode::NOT_FOUND,
        "There is no page at this address",
    )
    .await;
    let (status, _) = http.get(&ui.url("/links/sp-102/remove")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "sp-102 has no link to remove"
    );
    let incomplete = http
        .post(&ui.url("/sign-in"), &[("email", "x@library.example")])
        .await;
    assert_page(
        incomplete,
        StatusCode::BAD_REQUEST,
        "The sign-in form is incomplete: fill in the email and the password.",
    )
    .await;
}

/// The booking's PIN version as the provisioner stored it.
async fn pin_version(ui: &Ui, booking_id: &str) -> i32 {
    sqlx::query_scalar("SELECT pin_version FROM booking_pins WHERE booking_id = $1")
        .bind(booking_id)
        .fetch_one(&ui.system.db.pool)
        .await
        .expect("the booking has a PIN record")
}

#[tokio::test]
async fn staff_find_a_booking_see_its_pin_on_request_and_reissue_it() {
    let ui = Ui::start().await;
    let system = &ui.system;
    system.ready_with_link().await;
    let desk = "desk@riverside.example";
    ui.create_user(desk, Role::Staff).await;
    let ny = "America/New_York"
        .parse::<lockbridge_domain::TimeZone>()
        .unwrap()
        .tz();
    let day = (chrono::Utc::now().with_timezone(&ny) + chrono::Duration::days(2)).date_naive();
    let at = |h: u32| {
        day.and_hms_opt(h, 0, 0)
            .unwrap()
            .and_local_timezone(ny)
            .unwrap()
    };
    let ada = unique_patron();
    let (status, body) = system
        .put(
            "/v1/bookings/b-ada",
            &booking(
                "confirmed",
                &at(14).to_rfc3339(),
                &at(15).to_rfc3339(),
                &ada,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut grace = booking(
        "confirmed",
        &at(16).to_rfc3339(),
        &at(17).to_rfc3339(),
        &unique_patron(),
    );
    grace["space_id"] = json!("sp-102");
    grace["patron"]["name"] = json!("Grace Hopper");
    let (status, body) = system.put("/v1/bookings/b-grace", &grace).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    system
        .wait_for_pin("b-ada", "issued", Duration::from_secs(60))
        .await;
    let first_email = system
        .mailbox
        .wait_for(&ada, 1, Duration::from_secs(60))
        .await;

    let browser = Browser::start().await;
    ui.sign_in(&browser, desk, PASSWORD).await;
    browser.wait_for_text("Only admins can change").await;
    browser.click("nav a[href='/bookings']").await;
    browser.wait_for_text("Upcoming bookings").await;
    let rows = |browser: &Browser| {
        let browser = browser.client().clone();
        async move {
            let mut ids = Vec::new();
            for row in browser
                .find_all(fantoccini::Locator::Css("#results tbody tr"))
                .await
                .unwrap()
            {
                ids.push(row.attr("data-booking").await.unwrap().unwrap_or_default());
            }
            ids
        }
    };
    assert_eq!(rows(&browser).await, ["b-ada", "b-grace"]);
    // By email, by part of a name whatever its case, by id, by space name.
    for (q, expected) in [
        (ada.as_str(), "b-ada"),
        ("hopper", "b-grace"),
        ("b-grace", "b-grace"),
        ("study room 102", "b-grace"),
    ] {
        browser.fill("#q", q).await;
        browser.click("#search").await;
        browser
            .wait_for_text(&format!("Bookings matching “{q}”"))
            .await;
        assert_eq!(rows(&browser).await, [expected], "{q}");
    }
    // By the day the bookings start in their location, New York.
    browser
        .goto(&ui.url(&format!("/bookings?date={day}")))
        .await;
    browser.wait_for_text(&format!("Bookings on {day}")).await;
    assert_eq!(rows(&browser).await, ["b-ada", "b-grace"]);
    screenshot(&browser, "bookings").await;
    browser.goto(&ui.url("/bookings?date=2020-01-01")).await;
    browser.wait_for_text("No booking matches.").await;
    browser.goto(&ui.url("/bookings?q=&date=12/01/2027")).await;
    browser
        .wait_for_text("“12/01/2027” is not a date: write it as 2027-01-12.")
        .await;
    browser
        .goto(&ui.url(&format!("/bookings?q={}", "b-ada")))
        .await;
    browser.click("#results a[href='/bookings/b-ada']").await;

    // The details: the window as the lock reads it, with the lead and grace that made it.
    browser.wait_for_text("Booking b-ada").await;
    let facts = browser.find("#facts").await.text().await.unwrap();
    let zone = at(14).format("%Z");
    for fact in [
        "Ada Lovelace".to_owned(),
        format!("{day} 14:00–15:00 {zone} (America/New_York)"),
        format!("{day} 13:45–15:05 {zone} (America/New_York)"),
        "from 15 minutes before the start (the configuration) until 5 minutes after the end (the configuration)".to_owned(),
        "confirmed".to_owned(),
    ] {
        assert!(facts.contains(&fact), "“{fact}” in {facts}");
    }
    // Issued, and perhaps on the lock already (its confirmation is polled).
    assert!(
        [
            "issued, version 1",
            "issued, and the lock confirmed it), version 1"
        ]
        .iter()
        .any(|fact| facts.contains(fact)),
        "the PIN's state in {facts}"
    );
    let guest = system.guests_for("b-ada").remove(0);
    let manage = browser.find("#manage").await.attr("href").await.unwrap();
    assert_eq!(
        manage.as_deref(),
        Some(format!("https://connect.remotelock.com/access-guests/{}", guest.id).as_str())
    );
    let history = browser.find("#history").await.text().await.unwrap();
    assert!(history.contains("issued"), "{history}");

    // The PIN only on request, and each showing recorded.
    assert!(browser.find_all("#pin").await.is_empty());
    assert_eq!(ui.count("SELECT count(*) FROM staff_pin_viewings").await, 0);
    browser.click("#show-pin").await;
    let old_pin = browser.find("#pin").await.text().await.unwrap();
    assert_eq!(Some(old_pin.as_str()), guest.pin.as_deref());
    assert!(first_email[0].text.contains(&old_pin));
    assert_eq!(
        ui.count(&format!(
            "SELECT count(*) FROM staff_pin_viewings v JOIN staff_users u USING (user_id)
             WHERE v.booking_id = 'b-ada' AND v.pin_version = 1 AND v.email = '{desk}' AND u.role = 'staff'"
        ))
        .await,
        1
    );
    screenshot(&browser, "booking").await;

    // Reissue: a confirmation, then a new PIN on the same guest, emailed to the patron.
    browser.click("#reissue").await;
    let confirmation = browser
        .wait_for_text("Reissue the PIN of booking b-ada?")
        .await;
    assert!(
        confirmation.contains(&format!("gets the new one by email at {ada}")),
        "{confirmation}"
    );
    screenshot(&browser, "reissue-pin").await;
    browser.click("#confirm-reissue").await;
    browser
        .wait_for_text("A new PIN replaces PIN version 1")
        .await;
    let emails = system
        .mailbox
        .wait_for(&ada, 2, Duration::from_secs(60))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pin_version(&ui, "b-ada").await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the PIN was never reissued"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.goto(&ui.url("/bookings/b-ada")).await;
    browser.wait_for_text("issued, version 2").await;
    assert!(
        browser
            .find("#history")
            .await
            .text()
            .await
            .unwrap()
            .contains("reissued")
    );
    browser.click("#show-pin").await;
    let new_pin = browser.find("#pin").await.text().await.unwrap();
    assert_ne!(new_pin, old_pin);
    assert_eq!(
        system.guests_for("b-ada").remove(0).pin.as_deref(),
        Some(new_pin.as_str())
    );
    assert!(
        emails.iter().any(|e| e.text.contains(&new_pin)),
        "the patron has the new PIN"
    );
    assert_eq!(ui.count("SELECT count(*) FROM staff_pin_viewings").await, 2);

    // A booking without a lock has no PIN to show or reissue, even when posted anyway.
    browser.goto(&ui.url("/bookings/b-grace")).await;
    browser.wait_for_text("not applicable").await;
    assert!(browser.find_all("#show-pin, #reissue").await.is_empty());
    let mut http = HttpClient::from(loopback(1));
    http.sign_in(&ui, desk, PASSWORD).await;
    let (_, page) = http.get(&ui.url("/bookings/b-grace")).await;
    let csrf = csrf_of(&page);
    for path in ["/bookings/b-grace/reissue", "/bookings/b-grace"] {
        let answer = http.post(&ui.url(path), &[("csrf", &csrf)]).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{path}");
        let (_, page) = http.get(&ui.url("/bookings/b-grace")).await;
        assert!(page.contains("Booking b-grace has no"), "{path}: {page}");
    }
    assert_eq!(ui.count("SELECT count(*) FROM staff_pin_viewings").await, 2);
    let (status, page) = http.get(&ui.url("/bookings/no-such-booking")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("No booking no-such-booking."), "{page}");
}

/// A confirmed booking of `space_id` starting `days` from now, an hour long.
async fn book(system: &TestSystem, booking_id: &str, space_id: &str, days: i64) {
    let starts = chrono::Utc::now() + chrono::Duration::days(days);
    let mut body = booking(
        "confirmed",
        &starts.to_rfc3339(),
        &(starts + chrono::Duration::hours(1)).to_rfc3339(),
        &unique_patron(),
    );
    body["space_id"] = json!(space_id);
    let (status, body) = system
        .put(&format!("/v1/bookings/{booking_id}"), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// The text of the Locks table's row of `lock_id`.
async fn lock_row(browser: &Browser, lock_id: &str) -> String {
    browser
        .find(&format!("#locks tr[data-lock='{lock_id}']"))
        .await
        .text()
        .await
        .unwrap()
}

/// The navigation's badge, as a screen reader says it.
async fn lock_warnings(browser: &Browser) -> String {
    let text = browser.find("#lock-warnings").await.text().await.unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn the_locks_page_warns_of_offline_and_low_locks_needed_soon_and_the_navigation_counts_them()
{
    let ui = Ui::start().await;
    let system = &ui.system;
    system.authorize().await;
    system.catalogue().await;
    let seed = system.sim.seed();
    let [healthy, _, low, offline] = [0, 1, 2, 3].map(|i| seed.locks[i].id.clone());
    // The offline lock is needed tomorrow; the low one only in five days, past `warn_within`.
    for (space, lock) in [("sp-101", &offline), ("sp-102", &low)] {
        let (status, body) = system.link(space, lock).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    book(system, "b-tomorrow", "sp-101", 1).await;
    book(system, "b-later", "sp-102", 5).await;
    let desk = "desk@riverside.example";
    ui.create_user(desk, Role::Staff).await;

    let browser = Browser::start().await;
    ui.sign_in(&browser, desk, PASSWORD).await;
    browser.wait_for_text("Only admins can change").await;
    browser.click("#nav-locks").await;
    browser
        .wait_for_text("The locks of the RemoteLock account")
        .await;
    assert_eq!(browser.find_all("#locks tbody tr").await.len(), 4);
    let row = lock_row(&browser, &offline).await;
    for fact in [
        "Reading Room B1",
        "Berlin Branch",
        "offline",
        "Study Room 101 (sp-101)",
        "1, the next at",
        "offline: it cannot receive new PINs",
    ] {
        assert!(row.contains(fact), "“{fact}” in {row}");
    }
    // Low, but its booking is beyond the next 2 days: no warning yet.
    let row = lock_row(&browser, &low).await;
    assert!(
        row.contains("12%") && row.contains("Study Room 102 (sp-102)"),
        "{row}"
    );
    assert!(!row.contains("battery low"), "{row}");
    let row = lock_row(&browser, &healthy).await;
    assert!(
        row.contains("87%") && row.contains("online") && row.contains("not linked"),
        "{row}"
    );
    assert!(
        row.contains("(America/New_York)"),
        "last seen in the lock's zone: {row}"
    );
    assert_eq!(lock_warnings(&browser).await, "1 lock needs attention");

    // A booking of the low lock's space tomorrow makes it a warning too, counted on every page.
    book(system, "b-soon", "sp-102", 1).await;
    // What the offline lock reported before it went quiet (as tests/door_events.rs stores it).
    sqlx::query(
        "INSERT INTO remotelock_events (event_id, kind, occurred_at, created_at, received_via,
                                        status, lock_id, booking_id, applied_at)
         VALUES ('e-open', 'unlocked', now() - interval '2 hours', now(), 'poll', 'succeeded',
                 $1, 'b-tomorrow', now()),
                ('e-lost', 'connectivity', now() - interval '1 hour', now(), 'poll', 'failed',
                 $1, NULL, now())",
    )
    .bind(&offline)
    .execute(&system.db.pool)
    .await
    .unwrap();
    browser.goto(&ui.url("/locks")).await;
    browser.wait_for_text("battery low (12%)").await;
    assert!(lock_row(&browser, &low).await.contains("2, the next at"));
    let rows = browser.find_all("#activity tbody tr").await;
    assert_eq!(rows.len(), 2, "the doors' latest reports");
    let newest = rows[0].text().await.unwrap();
    assert!(
        newest.contains("Reading Room B1") && newest.contains("connection lost"),
        "{newest}"
    );
    let oldest = rows[1].text().await.unwrap();
    assert!(
        oldest.contains("unlocked with a booking's PIN") && oldest.contains("b-tomorrow"),
        "{oldest}"
    );
    // The booking's own page shows what its door reported.
    browser.goto(&ui.url("/bookings/b-tomorrow")).await;
    browser.wait_for_text("At the door").await;
    let door = browser.find("#activity").await.text().await.unwrap();
    assert!(door.contains("unlocked with a booking's PIN"), "{door}");
    assert!(
        !door.contains("connection lost"),
        "only the booking's own: {door}"
    );
    screenshot(&browser, "locks").await;
    browser.goto(&ui.url("/bookings")).await;
    browser.wait_for_text("Upcoming bookings").await;
    assert_eq!(lock_warnings(&browser).await, "2 locks need attention");
}

/// Cancels `booking_id` while RemoteLock refuses to deactivate its guest: the PIN still
/// works, and a `pin_not_revoked` failure opens.
async fn cancel_refusing_revocation(system: &TestSystem, booking_id: &str) {
    system.sim.inject(
        remotelock_sim::Fault::new("/access_persons/", remotelock_sim::FaultKind::Status(422))
            .on(remotelock_sim::Method::PUT),
    );
    let response = system
        .intake_api()
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/bookings/{booking_id}"),
        )
        .send()
        .await
        .expect("intake answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

/// Puts a message in the dead-letter queue `queue` of the system's virtual host.
async fn dead_letter(system: &TestSystem, queue: &str) {
    let connection =
        lapin::Connection::connect(&system.broker.url, lapin::ConnectionProperties::default())
            .await
            .expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            lapin::options::BasicPublishOptions::default(),
            b"{}",
            lapin::BasicProperties::default(),
        )
        .await
        .expect("published")
        .await
        .expect("confirmed");
    connection.close(200, "done".into()).await.expect("closed");
}

#[tokio::test]
async fn staff_see_an_open_failure_retry_it_and_count_the_dead_letters() {
    let ui = Ui::start().await;
    let system = &ui.system;
    system.ready_with_link().await;
    book(system, "stuck-1", "sp-101", 2).await;
    system
        .wait_for_pin("stuck-1", "issued", Duration::from_secs(60))
        .await;
    dead_letter(system, "notifier.pins.dead-letter").await;
    let desk = "desk@riverside.example";
    ui.create_user(desk, Role::Staff).await;
    let browser = Browser::start().await;
    ui.sign_in(&browser, desk, PASSWORD).await;
    browser.wait_for_text("Only admins can change").await;
    browser.click("nav a[href='/failures']").await;
    browser.wait_for_text("Nothing needs a person now.").await;
    for (queue, count) in [
        ("lock-provisioner.bookings.dead-letter", "0"),
        ("notifier.pins.dead-letter", "1"),
        ("booking-intake.bookings.dead-letter", "0"),
    ] {
        let row = browser
            .find(&format!("#dead-letters tr[data-queue='{queue}'] td"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(row, count, "{queue}");
    }
    assert!(browser.find("#ops-tools").await.text().await.unwrap() == "docs/operations.md");

    cancel_refusing_revocation(system, "stuck-1").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let id: i64 = loop {
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM failures WHERE kind = 'pin_not_revoked' AND resolved_at IS NULL",
        )
        .fetch_optional(&system.db.pool)
        .await
        .unwrap();
        if let Some(id) = open {
            break id;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failure opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser.goto(&ui.url("/failures")).await;
    let row = browser
        .find(&format!("#failures tr[data-failure='{id}']"))
        .await
        .text()
        .await
        .unwrap();
    for fact in [
        "PIN not revoked",
        "stuck-1",
        "still opens the door",
        "(America/New_York)",
    ] {
        assert!(row.contains(fact), "“{fact}” in {row}");
    }
    screenshot(&browser, "failures").await;
    browser.click(&format!("#retry-{id}")).await;
    browser
        .wait_for_text(&format!("Failure {id} runs again now"))
        .await;
    system
        .wait_for_pin("stuck-1", "revoked", Duration::from_secs(60))
        .await;
    browser.goto(&ui.url("/failures")).await;
    browser.wait_for_text("Nothing needs a person now.").await;

    // Retrying what is resolved, what does not exist, or with no number says why not.
    let mut http = HttpClient::from(loopback(1));
    http.sign_in(&ui, desk, PASSWORD).await;
    let (_, page) = http.get(&ui.url("/failures")).await;
    let csrf = csrf_of(&page);
    for (path, sentence) in [
        (
            format!("/failures/{id}/retry"),
            format!("Failure {id} is resolved: nothing to retry."),
        ),
        (
            "/failures/999999/retry".to_owned(),
            "No failure 999999.".to_owned(),
        ),
        (
            "/failures/first/retry".to_owned(),
            "“first” is not the number of a failure.".to_owned(),
        ),
    ] {
        let answer = http.post(&ui.url(&path), &[("csrf", &csrf)]).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{path}");
        let (_, page) = http.get(&ui.url("/failures")).await;
        assert!(page.contains(&sentence), "{path}: {page}");
    }
    // Without the session's token, nothing runs.
    let forged = http
        .post(
            &ui.url(&format!("/failures/{id}/retry")),
            &[("csrf", "forged")],
        )
        .await;
    assert_page(forged, StatusCode::FORBIDDEN, "This form has expired").await;
}

/// Polls the simulator until the guest of `booking_id` works from `starts_at` (lock time).
async fn wait_for_guest_start(
    system: &TestSystem,
    booking_id: &str,
    starts_at: chrono::NaiveDateTime,
) -> remotelock_sim::GuestSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let guests = system.guests_for(booking_id);
        if let Some(guest) = guests
            .iter()
            .find(|g| g.starts_at == starts_at && g.pin.is_some())
        {
            return guest.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guest of {booking_id} never started at {starts_at}: {guests:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn lead_time_and_grace_set_in_the_ui_change_the_pin_windows_the_most_specific_winning() {
    let ui = Ui::start().await;
    let system = &ui.system;
    system.ready_with_link().await;
    let ny = "America/New_York"
        .parse::<lockbridge_domain::TimeZone>()
        .unwrap()
        .tz();
    let day = (chrono::Utc::now().with_timezone(&ny) + chrono::Duration::days(2)).date_naive();
    let at = |h: u32| day.and_hms_opt(h, 0, 0).unwrap();
    let put = |id: &'static str, from: u32| async move {
        let local = |h: u32| at(h).and_local_timezone(ny).unwrap().to_rfc3339();
        let (status, body) = system
            .put(
                &format!("/v1/bookings/{id}"),
                &booking(
                    "confirmed",
                    &local(from),
                    &local(from + 1),
                    &unique_patron(),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    };
    // Before any setting: the configuration's 15 minutes.
    put("b-before", 10).await;
    let minutes = chrono::Duration::minutes;
    wait_for_guest_start(system, "b-before", at(10) - minutes(15)).await;

    let browser = Browser::start().await;
    ui.sign_in(&browser, &ui.admin_email, PASSWORD).await;
    browser
        .wait_for_text("Link a space with a smart lock")
        .await;
    browser.click("nav a[href='/settings']").await;
    browser
        .wait_for_text("Nothing is set: the configuration applies everywhere.")
        .await;
    // Every space: lead 20, grace 10; Riverside Main: lead 25; Study Room 101: lead 30.
    for (scope, lead, grace) in [
        ("everywhere", "20", "10"),
        ("location:main", "25", ""),
        ("space:sp-101", "30", ""),
    ] {
        browser.select("#scope", scope).await;
        browser.fill("#lead", lead).await;
        browser.fill("#grace", grace).await;
        browser.click("#save-window").await;
        browser.wait_for_text("Saved: lead time").await;
    }
    let notice = browser.find(".notice").await.text().await.unwrap();
    assert!(
        notice.contains("1 upcoming booking of linked spaces there gets the PIN window again"),
        "{notice}"
    );
    let windows = browser.find("#windows").await.text().await.unwrap();
    for row in [
        "Every space 20 minutes 10 minutes",
        "Every space of Riverside Main 25 minutes not set",
        "Study Room 101 30 minutes not set",
    ] {
        assert!(
            windows.replace('\n', " ").contains(row),
            "“{row}” in {windows}"
        );
    }
    screenshot(&browser, "settings").await;

    // The booking already there follows, and a new one gets the space's lead and the grace
    // set for every space, as RemoteLock's guest shows.
    let before = wait_for_guest_start(system, "b-before", at(10) - minutes(30)).await;
    assert_eq!(before.ends_at, at(11) + minutes(10));
    put("b-new", 13).await;
    let guest = wait_for_guest_start(system, "b-new", at(13) - minutes(30)).await;
    assert_eq!(guest.ends_at, at(14) + minutes(10));
    browser.goto(&ui.url("/bookings/b-new")).await;
    let said = browser.find("#lead-grace").await.text().await.unwrap();
    assert_eq!(
        said,
        "from 30 minutes before the start (Study Room 101's setting) until 10 minutes after the \
         end (the setting for every space)"
    );

    // Clearing the space's setting leaves the location's.
    browser.goto(&ui.url("/settings")).await;
    browser
        .click("#windows tr[data-scope='space:sp-101'] button")
        .await;
    browser.wait_for_text("Saved: lead time not set").await;
    wait_for_guest_start(system, "b-new", at(13) - minutes(25)).await;
    browser.goto(&ui.url("/bookings/b-new")).await;
    browser.wait_for_text("(Riverside Main's setting)").await;

    // Bad values: a sentence for each field, nothing stored.
    browser.goto(&ui.url("/settings")).await;
    browser.select("#scope", "space:sp-101").await;
    browser.fill("#lead", "half an hour").await;
    browser.fill("#grace", "1500").await;
    browser.click("#save-window").await;
    let errors = browser.find("#window-errors").await.text().await.unwrap();
    assert!(
        errors
            .contains("Lead time: “half an hour” is not a whole number of minutes from 0 to 1440.")
            && errors.contains(
                "Grace: 1500 minutes is more than 24 hours (1440 minutes), the most it may be."
            ),
        "{errors}"
    );
    screenshot(&browser, "settings-refused").await;
    assert_eq!(
        ui.count("SELECT count(*) FROM staff_settings WHERE scope = 'space'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_pin_length_and_alert_recipients_set_in_the_ui_apply_and_bad_ones_are_refused() {
    let ui = Ui::start().await;
    let system = &ui.system;
    system.ready_with_link().await;
    let mut http = HttpClient::from(loopback(1));
    http.sign_in(&ui, &ui.admin_email, PASSWORD).await;
    let (status, page) = http.get(&ui.url("/settings")).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&page);
    for (digits, recipients, sentence) in [
        (
            "9",
            "",
            "PIN length: “9” is not a number of digits from 4 to 8",
        ),
        (
            "3",
            "",
            "PIN length: “3” is not a number of digits from 4 to 8",
        ),
        (
            "",
            "desk@library.org, front desk",
            "Alert recipients: “front desk” is not an email address",
        ),
    ] {
        let answer = http
            .post(
                &ui.url("/settings/pins-and-alerts"),
                &[
                    ("csrf", &csrf),
                    ("pin_digits", digits),
                    ("alert_recipients", recipients),
                ],
            )
            .await;
        assert_page(answer, StatusCode::BAD_REQUEST, sentence).await;
    }
    for scope in ["space:nowhere", "room:sp-101", ""] {
        let answer = http
            .post(
                &ui.url("/settings/window"),
                &[
                    ("csrf", csrf.as_str()),
                    ("scope", scope),
                    ("lead_minutes", "30"),
                ],
            )
            .await;
        assert_page(
            answer,
            StatusCode::BAD_REQUEST,
            "Where: choose every space, a location or a space of the catalogue from the list.",
        )
        .await;
    }
    assert_eq!(ui.count("SELECT count(*) FROM staff_settings").await, 0);

    let desk = unique_patron();
    let answer = http
        .post(
            &ui.url("/settings/pins-and-alerts"),
            &[
                ("csrf", &csrf),
                ("pin_digits", "8"),
                ("alert_recipients", &format!("Front desk <{desk}>")),
            ],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (_, page) = http.get(&ui.url("/settings")).await;
    assert!(page.contains("Saved: new PINs have 8 digits"), "{page}");

    // A new booking's PIN has 8 digits.
    book(system, "b-eight", "sp-101", 2).await;
    system
        .wait_for_pin("b-eight", "issued", Duration::from_secs(60))
        .await;
    let pin = system.guests_for("b-eight").remove(0).pin.unwrap();
    assert_eq!(pin.len(), 8, "{pin}");
    // A failure's alert goes to the address set here, not alerts.recipients.
    cancel_refusing_revocation(system, "b-eight").await;
    let alert = &system
        .mailbox
        .wait_for(&desk, 1, Duration::from_secs(60))
        .await[0];
    assert!(alert.text.contains("b-eight"), "{}", alert.text);
    assert!(
        system.mailbox.to(&system.staff).await.is_empty(),
        "not to alerts.recipients"
    );

    // Staff accounts may not see or change the settings.
    let staff = "desk@riverside.example";
    ui.create_user(staff, Role::Staff).await;
    let mut desk_client = HttpClient::from(loopback(2));
    desk_client.sign_in(&ui, staff, PASSWORD).await;
    let (status, page) = desk_client.get(&ui.url("/settings")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("This page is for admins"), "{page}");
    assert!(
        !page.contains("href=\"/settings\""),
        "no Settings link for staff"
    );
    let (_, page) = desk_client.get(&ui.url("/bookings")).await;
    assert!(
        !page.contains("href=\"/settings\""),
        "no Settings link for staff: {page}"
    );
    let staff_csrf = csrf_of(&page);
    let answer = desk_client
        .post(
            &ui.url("/settings/window"),
            &[
                ("csrf", staff_csrf.as_str()),
                ("scope", "everywhere"),
                ("lead_minutes", "60"),
            ],
        )
        .await;
    assert_page(answer, StatusCode::FORBIDDEN, "This page is for admins").await;
    assert_eq!(
        ui.count("SELECT count(*) FROM staff_settings WHERE lead_time_secs IS NOT NULL")
            .await,
        0
    );
}

/// When the history of `booking_id` last recorded `state`, on a New York wall clock.
async fn history_at_in_new_york(ui: &Ui, booking_id: &str, state: &str) -> String {
    let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT max(at) FROM pin_history WHERE booking_id = $1 AND state::text = $2",
    )
    .bind(booking_id)
    .bind(state)
    .fetch_one(&ui.system.db.pool)
    .await
    .expect("a history entry");
    let ny = "America/New_York"
        .parse::<lockbridge_domain::TimeZone>()
        .unwrap();
    ny.local(at).format("%Y-%m-%d %H:%M").to_string()
}

#[tokio::test]
async fn staff_download_pin_and_failure_reports_as_csv_with_quoted_names_and_local_times() {
    let ui = Ui::start().await;
    let system = &ui.system;
    system.ready_with_link().await;
    // A space whose name a CSV must quote, on the second lock.
    system
        .intake_api()
        .put_catalogue([(
            "/v1/spaces/sp-quoted",
            json!({"category_id": "rooms", "name": "Room \"A\", east", "kind": "bookable_as_whole"}),
        )])
        .await;
    let lock = system.sim.seed().locks[1].id.clone();
    let (status, body) = system.link("sp-quoted", &lock).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    book(system, "b-q", "sp-quoted", 2).await;
    system
        .wait_for_pin("b-q", "issued", Duration::from_secs(60))
        .await;
    let desk = "desk@riverside.example";
    ui.create_user(desk, Role::Staff).await;
    let mut http = HttpClient::from(loopback(1));
    http.sign_in(&ui, desk, PASSWORD).await;
    let (_, page) = http.get(&ui.url("/bookings/b-q")).await;
    let csrf = csrf_of(&page);
    let answer = http
        .post(&ui.url("/bookings/b-q/reissue"), &[("csrf", &csrf)])
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pin_version(&ui, "b-q").await < 2 {
        assert!(tokio::time::Instant::now() < deadline, "never reissued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = system
        .intake_api()
        .request(reqwest::Method::DELETE, "/v1/bookings/b-q")
        .send()
        .await
        .expect("intake answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    system
        .wait_for_pin("b-q", "revoked", Duration::from_secs(60))
        .await;
    // And a failure: a revocation RemoteLock refuses.
    book(system, "b-stuck", "sp-101", 2).await;
    system
        .wait_for_pin("b-stuck", "issued", Duration::from_secs(60))
        .await;
    cancel_refusing_revocation(system, "b-stuck").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ui
        .count("SELECT count(*) FROM failures WHERE booking_id = 'b-stuck'")
        .await
        == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "no failure opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        today - chrono::Duration::days(1),
        today + chrono::Duration::days(1),
    );
    let csv = |query: String| {
        let request = http
            .http
            .get(ui.url(&query))
            .header(header::COOKIE, http.cookie_header());
        async move {
            let response = request.send().await.expect("the admin answers");
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            let headers = response.headers().clone();
            assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
            let disposition = headers[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .to_owned();
            (disposition, response.text().await.unwrap())
        }
    };
    // The door opened with b-q's PIN (as tests/door_events.rs records it from the lock).
    sqlx::query(
        "INSERT INTO remotelock_events (event_id, kind, occurred_at, created_at, received_via,
                                        status, lock_id, booking_id, applied_at)
         VALUES ('e-open', 'unlocked', '2026-12-02T15:04:00Z', now(), 'poll', 'succeeded',
                 'lock-1', 'b-q', now())",
    )
    .execute(&system.db.pool)
    .await
    .unwrap();
    let (disposition, body) = csv(format!(
        "/reports/pins.csv?from={from}&to={to}&space=sp-quoted"
    ))
    .await;
    assert_eq!(
        disposition,
        format!("attachment; filename=\"pins-{from}-to-{to}.csv\"")
    );
    let lines: Vec<&str> = body.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "location,space_id,space,booking_id,event,at,time_zone,detail,pin_used,first_use"
    );
    assert_eq!(lines.len(), 4, "issued, reissued, revoked: {body}");
    for (line, event) in lines[1..].iter().zip(["issued", "reissued", "revoked"]) {
        assert!(
            line.starts_with(&format!(
                "Riverside Main,sp-quoted,\"Room \"\"A\"\", east\",b-q,{event},"
            )),
            "{line}"
        );
        assert!(line.contains(",America/New_York,"), "{line}");
        assert!(
            line.ends_with(",yes,2026-12-02 10:04"),
            "first use in local time: {line}"
        );
    }
    let revoked_at = history_at_in_new_york(&ui, "b-q", "revoked").await;
    assert!(
        lines[3].contains(&format!(",revoked,{revoked_at},America/New_York,")),
        "{}",
        lines[3]
    );
    assert!(
        !body.contains(&system.guests_for("b-q")[0].pin.clone().unwrap()),
        "no PIN in a report"
    );
    // Every space: Study Room 101's PIN too.
    let (_, body) = csv(format!("/reports/pins.csv?from={from}&to={to}")).await;
    assert!(
        body.contains(",sp-101,Study Room 101,b-stuck,issued,"),
        "{body}"
    );
    let stuck = body.lines().find(|l| l.contains(",b-stuck,")).unwrap();
    assert!(stuck.ends_with(",no,"), "never used: {stuck}");
    // A range without any: the header alone.
    let (_, body) = csv("/reports/pins.csv?from=2020-01-01&to=2020-01-31".to_owned()).await;
    assert_eq!(
        body,
        "location,space_id,space,booking_id,event,at,time_zone,detail,pin_used,first_use\r\n"
    );

    let (disposition, body) = csv(format!("/reports/failures.csv?from={from}&to={to}")).await;
    assert!(disposition.contains("failures-"), "{disposition}");
    let lines: Vec<&str> = body.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "failure_id,kind,booking_id,space,opened,resolved,time_zone,attempts,reason"
    );
    assert_eq!(lines.len(), 2, "{body}");
    assert!(
        lines[1].contains(",PIN not revoked,b-stuck,Study Room 101,")
            && lines[1].contains(",America/New_York,"),
        "{}",
        lines[1]
    );

    // Bad ranges are a page with a sentence, not a file.
    for (query, sentence) in [
        (
            "/reports/pins.csv?from=2027-02-01&to=2027-01-01",
            "To: 2027-01-01 is before 2027-02-01; the range ends on or after the day it starts.",
        ),
        (
            "/reports/failures.csv?from=&to=01/02/2027",
            "To: “01/02/2027” is not a date: write it as 2027-01-12.",
        ),
        (
            "/reports/pins.csv?from=2026-01-01&to=2027-06-01",
            "The range is 517 days long; a report covers at most 366.",
        ),
    ] {
        let (status, page) = http.get(&ui.url(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.contains(sentence), "{query}: {page}");
    }
    let (_, page) = http
        .get(&ui.url("/reports/failures.csv?to=2027-01-01"))
        .await;
    assert!(
        page.contains("From: give a date, such as 2027-01-12."),
        "{page}"
    );

    // In the browser: the page, and a refused range.
    let browser = Browser::start().await;
    ui.sign_in(&browser, desk, PASSWORD).await;
    browser.wait_for_text("Only admins can change").await;
    browser.click("nav a[href='/reports']").await;
    browser
        .wait_for_text("PINs issued, reissued and revoked")
        .await;
    assert!(
        browser
            .options("#pins-space")
            .await
            .contains(&"sp-quoted".to_owned())
    );
    screenshot(&browser, "reports").await;
    browser
        .goto(&ui.url("/reports/pins.csv?from=2027-02-01&to=2027-01-01&space=sp-quoted"))
        .await;
    browser.wait_for_text("is before 2027-02-01").await;
    // Without a session, no report.
    let (status, _) = HttpClient::from(loopback(4))
        .get(&ui.url(&format!("/reports/pins.csv?from={from}&to={to}")))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
