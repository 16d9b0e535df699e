//! A real browser for the staff UI's tests: Debian's headless Chromium, driven over WebDriver
//! (fantoccini) by chromedriver on a free port. `scripts/lib.sh`'s `ensure_browser` installs
//! both. Each browser has its own profile, and is closed when dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::admin_api::free_local_port;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The machine is loaded: pages get this long to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);
/// The window's width and (least) height.
const WINDOW: (u32, u32) = (1280, 900);

pub struct Browser {
    client: Client,
    /// chromedriver leads its own process group, with the browser it starts in it: dropping
    /// the browser ends that group.
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    pub async fn start() -> Self {
        let port = free_local_port().port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{CHROMEDRIVER} starts ({e}): scripts/lib.sh ensure_browser installs it")
                })
        };
        let profile = std::env::temp_dir().join(format!(
            "lockbridge-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        // chromedriver needs a moment before it listens.
        let client = loop {
            let connected = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await;
            match connected {
                Ok(client) => break client,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no WebDriver session with {CHROMIUM}: {error}"),
            }
        };
        client
            .set_window_size(WINDOW.0, WINDOW.1)
            .await
            .expect("the window resizes");
        Self {
            client,
            driver,
            profile,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// The element, once the page shows it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Every element matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("the page answers")
    }

    /// The values of a select's options, as the page offers them now (the placeholder left out).
    pub async fn options(&self, select_css: &str) -> Vec<String> {
        let mut values = Vec::new();
        for option in self.find_all(&format!("{select_css} option")).await {
            match option.attr("value").await.expect("the page answers") {
                Some(value) if !value.is_empty() => values.push(value),
                _ => {}
            }
        }
        values
    }

    /// Polls the main content's text until it contains `needle`; answers the text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = match self.client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never said “{needle}”; it says: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("the field takes text");
    }

    /// Chooses the option with `value` in the select list `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("no option {value} in {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .expect("the element clicks");
    }

    /// Saves the whole page as `dir/name.png`: the window grows to the page's height first.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("the screenshot folder can be made");
        // The page's height, and what the window's frame takes beside it.
        let measured = self
            .client
            .execute(
                "return document.documentElement.scrollHeight \
                        + window.outerHeight - window.innerHeight;",
                Vec::new(),
            )
            .await
            .expect("the page answers");
        let height = measured.as_u64().map_or(WINDOW.1, |h| h as u32);
        self.client
            .set_window_size(WINDOW.0, height.clamp(WINDOW.1, 4000))
            .await
            .expect("the window resizes");
        let png = self.client.screenshot().await.expect("a screenshot");
        self.client
            .set_window_size(WINDOW.0, WINDOW.1)
            .await
            .expect("the window resizes");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is saved");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The process group chromedriver leads: it and the Chromium it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
