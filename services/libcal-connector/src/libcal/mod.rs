//! A client of LibCal's API v1.1 (libcal-api.md): the read-only space endpoints the connector
//! needs, each call authenticated, a refused token renewed once, every failure an error that
//! says which call failed and how.

mod model;
mod oauth;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::NaiveDate;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

pub use model::{BookingRow, CategoryItems, Item, Location, LocationCategories, Seat};
use oauth::{Credentials, TokenCache};

use crate::configuration::LibcalSettings;

#[derive(Debug, thiserror::Error)]
pub enum LibcalError {
    #[error("LibCal did not answer {path}")]
    Unreachable {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("LibCal refused the client credentials (libcal.client_id, libcal.client_secret): {0}")]
    Credentials(String),
    #[error("LibCal answered {status} to {path}: {message}")]
    Status {
        path: String,
        status: u16,
        message: String,
    },
    #[error("LibCal's answer to {path} is not what its API returns")]
    Malformed {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The most ids one call names (a comma list in the path); keeps URLs short.
const IDS_PER_CALL: usize = 50;
/// Seats per page: the seats endpoint allows 1–100 [T].
const SEATS_PER_PAGE: u32 = 100;

/// What one error body says: its `error_description` or `error`, else the start of the text.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    field("error_description")
        .or_else(|| field("error"))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(200).collect();
            if text.trim().is_empty() {
                "no explanation".into()
            } else {
                text
            }
        })
}

#[derive(Clone)]
pub struct LibCal {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api: Url,
    token_url: Url,
    tokens: TokenCache,
    /// Whether LibCal's last answer was one (any status but a 5xx), for `/readyz`.
    answering: AtomicBool,
}

impl LibCal {
    pub fn new(settings: &LibcalSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!(
                "lockbridge-libcal-connector/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        let api = settings
            .base_url
            .join("1.1/")
            .expect("a base URL takes a relative path");
        let token_url = api.join("oauth/token").expect("a relative path");
        let credentials = Credentials {
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api,
                token_url,
                tokens: TokenCache::new(credentials),
                answering: AtomicBool::new(false),
            }),
        })
    }

    /// Whether LibCal answered the last call (successfully or with its own refusal).
    pub fn is_answering(&self) -> bool {
        self.inner.answering.load(Ordering::Relaxed)
    }

    pub async fn locations(&self) -> Result<Vec<Location>, LibcalError> {
        self.get("space/locations", &[("admin_only", "1".into())])
            .await
    }

    pub async fn categories(&self, lids: &[u64]) -> Result<Vec<LocationCategories>, LibcalError> {
        self.get_each("space/categories", lids, &[("admin_only", "1".into())])
            .await
    }

    pub async fn category_items(&self, cids: &[u64]) -> Result<Vec<CategoryItems>, LibcalError> {
        self.get_each("space/category", cids, &[("admin_only", "1".into())])
            .await
    }

    pub async fn items(&self, ids: &[u64]) -> Result<Vec<Item>, LibcalError> {
        self.get_each("space/item", ids, &[]).await
    }

    /// The seats of a space booked per seat, every page. `None`: this instance has no Seats
    /// module (a separate subscription [T]), so seats are known only from their bookings.
    pub async fn seats(&self, lid: u64, space: u64) -> Result<Option<Vec<Seat>>, LibcalError> {
        let mut seats = Vec::new();
        for page in 0.. {
            let query = [
                ("spaceId", space.to_string()),
                ("pageIndex", page.to_string()),
                ("pageSize", SEATS_PER_PAGE.to_string()),
            ];
            // The newer endpoints live under /api/1.1/ [T].
            let url = self
                .inner
                .api
                .join(&format!("../api/1.1/space/seats/{lid}"))
                .expect("a relative path");
            let batch: Vec<Seat> = match self.get_url(url, &query).await {
                Ok(batch) => batch,
                Err(LibcalError::Status { status: 404, .. }) => return Ok(None),
                Err(error) => return Err(error),
            };
            let last = batch.len() < SEATS_PER_PAGE as usize;
            seats.extend(batch);
            if last {
                break;
            }
        }
        Ok(Some(seats))
    }

    /// One page of the rows of location `lid` starting on `date` … `date + days` (local days),
    /// tentative and cancelled ones included.
    pub async fn bookings_page(
        &self,
        lid: u64,
        date: NaiveDate,
        days: u32,
        page: u32,
        limit: u32,
    ) -> Result<Vec<BookingRow>, LibcalError> {
        let query = [
            ("lid", lid.to_string()),
            ("date", date.format("%Y-%m-%d").to_string()),
            ("days", days.to_string()),
            ("page", page.to_string()),
            ("limit", limit.to_string()),
            // Both default on [T]; said anyway, since a cancellation is only seen this way.
            ("include_cancel", "1".into()),
            ("include_tentative", "1".into()),
        ];
        self.get("space/bookings", &query).await
    }

    /// Every row of the given transactions (`bookId`s), wherever their dates are now.
    pub async fn booking_rows(&self, book_ids: &[String]) -> Result<Vec<BookingRow>, LibcalError> {
        let mut rows = Vec::new();
        for chunk in book_ids.chunks(IDS_PER_CALL) {
            let path = format!("space/booking/{}", chunk.join(","));
            rows.extend(self.get::<Vec<BookingRow>>(&path, &[]).await?);
        }
        Ok(rows)
    }

    /// `{path}/{id,id,…}` for all `ids`, a few dozen per call, answers concatenated.
    async fn get_each<T: DeserializeOwned>(
        &self,
        path: &str,
        ids: &[u64],
        query: &[(&str, String)],
    ) -> Result<Vec<T>, LibcalError> {
        let mut all = Vec::new();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let path = format!("{path}/{}", list.join(","));
            all.extend(self.get::<Vec<T>>(&path, query).await?);
        }
        Ok(all)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, LibcalError> {
        let url = self.inner.api.join(path).expect("a relative path");
        self.get_url(url, query).await
    }

    /// One call with a live token; a 401 drops the token and the call is made once more with
    /// a new one (LibCal may end a token early [T]).
    async fn get_url<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, String)],
    ) -> Result<T, LibcalError> {
        let path = url.path().to_owned();
        let mut renewed = false;
        loop {
            let access = self
                .inner
                .tokens
                .access(&self.inner.http, &self.inner.token_url)
                .await
                .inspect_err(|error| self.note(error))?;
            let result = self.send(&url, &path, query, &access).await;
            self.note_result(&result);
            match result {
                Err(LibcalError::Status { status: 401, .. }) if !renewed => {
                    self.inner.tokens.refused(&access).await;
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: &Url,
        path: &str,
        query: &[(&str, String)],
        access: &secrecy::SecretString,
    ) -> Result<T, LibcalError> {
        let unreachable = |source| LibcalError::Unreachable {
            path: path.to_owned(),
            source,
        };
        let response = self
            .inner
            .http
            .get(url.clone())
            .query(query)
            .bearer_auth(access.expose_secret())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status != StatusCode::OK {
            return Err(LibcalError::Status {
                path: path.to_owned(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        // Some endpoints answer an `{"error": …}` object with 200 [T].
        if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&body)
            && let Some(error) = object.get("error")
        {
            return Err(LibcalError::Status {
                path: path.to_owned(),
                status: status.as_u16(),
                message: error.as_str().unwrap_or("an error").to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|source| LibcalError::Malformed {
            path: path.to_owned(),
            source,
        })
    }

    fn note_result<T>(&self, result: &Result<T, LibcalError>) {
        match result {
            Ok(_) => self.inner.answering.store(true, Ordering::Relaxed),
            Err(error) => self.note(error),
        }
    }

    fn note(&self, error: &LibcalError) {
        let answering = match error {
            LibcalError::Unreachable { .. } => false,
            LibcalError::Status { status, .. } => *status < 500,
            LibcalError::Credentials(_) | LibcalError::Malformed { .. } => true,
        };
        self.inner.answering.store(answering, Ordering::Relaxed);
    }
}
