use std::time::Duration;

use serde::Deserialize;

/// The test SMTP server's inbox (MailDev, started by `.ci/run` and `scripts/up`).
pub struct Mailbox {
    api: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Email {
    pub subject: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: String,
    pub envelope: Envelope,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub to: Vec<Address>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Address {
    pub address: String,
}

pub fn smtp_url() -> String {
    std::env::var("LOCKBRIDGE_TEST_SMTP").unwrap_or_else(|_| "smtp://127.0.0.1:1025".to_owned())
}

impl Default for Mailbox {
    fn default() -> Self {
        Self {
            api: std::env::var("LOCKBRIDGE_TEST_MAILDEV")
                .unwrap_or_else(|_| "http://127.0.0.1:1080".to_owned()),
            http: reqwest::Client::new(),
        }
    }
}

impl Mailbox {
    /// Every email whose envelope is addressed to `address`.
    pub async fn to(&self, address: &str) -> Vec<Email> {
        let all: Vec<Email> = self
            .http
            .get(format!("{}/api/email", self.api))
            .send()
            .await
            .expect("MailDev reachable (is it running? see .ci/run)")
            .json()
            .await
            .expect("MailDev answers JSON");
        all.into_iter()
            .filter(|e| {
                e.envelope
                    .to
                    .iter()
                    .any(|to| to.address.eq_ignore_ascii_case(address))
            })
            .collect()
    }

    /// Waits until `address` has `count` emails, then returns them; panics after `timeout`.
    pub async fn wait_for(&self, address: &str, count: usize, timeout: Duration) -> Vec<Email> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let emails = self.to(address).await;
            if emails.len() >= count || tokio::time::Instant::now() > deadline {
                assert_eq!(emails.len(), count, "emails to {address}");
                return emails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
