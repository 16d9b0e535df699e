//! booking-intake as the connector calls it: over HTTP with its own source token, like any
//! upstream (design §3.1). Each answer is sorted into what the sender does next.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

/// A failure that may pass: intake is down, restarting or overloaded. Sent again later.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("booking-intake did not answer")]
    Unreachable(#[source] reqwest::Error),
    #[error("booking-intake answered {status}: {detail}")]
    Status { status: u16, detail: String },
    /// The token is wrong: a setting to fix, reported loudly, retried meanwhile.
    #[error(
        "booking-intake refused libcal.intake_token ({status}); set it to this source's intake.tokens.<source>"
    )]
    Token { status: u16 },
}

/// What intake made of one booking write.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// It holds this booking at a higher revision (or the same with other content).
    Behind,
    /// It does not know the space yet: the catalogue must be sent first.
    UnknownSpace,
    /// Refused for good (422 on a field, the id belongs to another source…), with why.
    Refused(String),
}

#[derive(Clone)]
pub struct Intake {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl Intake {
    pub fn new(base: Url, token: SecretString, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { http, base, token })
    }

    /// `PUT /v1/bookings/{id}` with the revision in the body.
    pub async fn put_booking(
        &self,
        booking_id: &str,
        body: &Value,
    ) -> Result<Outcome, Unavailable> {
        let (status, problem) = self.put(&format!("v1/bookings/{booking_id}"), body).await?;
        Ok(match status {
            s if s.is_success() => Outcome::Accepted,
            StatusCode::CONFLICT if field(&problem) == Some("revision") => Outcome::Behind,
            StatusCode::UNPROCESSABLE_ENTITY if field(&problem) == Some("space_id") => {
                Outcome::UnknownSpace
            }
            _ => Outcome::Refused(detail(status, &problem)),
        })
    }

    /// `PUT` of a location, category or space (`path` as `v1/spaces/{id}`).
    pub async fn put_catalogue(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Result<(), String>, Unavailable> {
        let (status, problem) = self.put(path, body).await?;
        Ok(if status.is_success() {
            Ok(())
        } else {
            Err(detail(status, &problem))
        })
    }

    /// The revision intake holds for the booking, if it holds it.
    pub async fn revision(&self, booking_id: &str) -> Result<Option<i64>, Unavailable> {
        let url = self.url(&format!("v1/bookings/{booking_id}"));
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(Unavailable::Unreachable)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(body.get("revision").and_then(Value::as_i64)),
            s => Err(unavailable(s, &body)),
        }
    }

    async fn put(&self, path: &str, body: &Value) -> Result<(StatusCode, Value), Unavailable> {
        let response = self
            .http
            .put(self.url(path))
            .bearer_auth(self.token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(Unavailable::Unreachable)?;
        let status = response.status();
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_server_error()
            || matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
            )
        {
            return Err(unavailable(status, &problem));
        }
        Ok((status, problem))
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a relative path")
    }
}

fn unavailable(status: StatusCode, problem: &Value) -> Unavailable {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Unavailable::Token {
            status: status.as_u16(),
        },
        _ => Unavailable::Status {
            status: status.as_u16(),
            detail: detail(status, problem),
        },
    }
}

/// The first field an RFC 9457 problem from intake names.
fn field(problem: &Value) -> Option<&str> {
    problem.get("field").and_then(Value::as_str)
}

/// What a problem says (intake's `detail` lists every field at fault), else the status.
fn detail(status: StatusCode, problem: &Value) -> String {
    problem
        .get("detail")
        .or_else(|| problem.get("title"))
        .and_then(Value::as_str)
        .map_or_else(|| status.to_string(), str::to_owned)
}
