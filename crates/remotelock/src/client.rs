//! The RemoteLock API calls lockbridge makes (remotelock-api.md §3). Each call is made for a
//! piece of work of some urgency ([`RemoteLockClient::for_work`]) and taken from the account's
//! rate-limit budget first (budget.rs), carries the stored access token, and on a refused token
//! refreshes once and tries again. Nothing else is retried here: the callers retry durably,
//! and a POST repeated after a lost answer could create a second guest (design §4).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, header::ACCEPT, redirect};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use url::Url;

use crate::RemoteLockSettings;
use crate::{
    budget::{Budget, Grant, Urgency, Window},
    error::{FieldError, RemoteLockError, TransientCause},
    oauth::TokenSet,
    resources::{
        Access, AccessGuest, Account, Device, DeviceType, Document, Event, GrantAttributes,
        GuestAttributes, GuestStatus, GuestUpdate, Location, NewAccessGuest, Page, RequestBody,
    },
    tokens::TokenManager,
    webhooks,
};
use lockbridge_domain::{AccessId, BookingId, GuestId, LockId};

/// API version 1, in the form most of RemoteLock's examples use (remotelock-api.md §1.3).
const MEDIA_TYPE: &str = "application/vnd.lockstate+json; version=1";
const PER_PAGE: u32 = 50;
/// RemoteLock serves at most 10,000 records of a collection (`page * per_page`).
const MAX_PAGES: u32 = 10_000 / PER_PAGE;
/// A sync poll reads at most this many pages; what is older waits for the next poll.
const MAX_EVENT_PAGES: u32 = 4;

#[derive(Clone)]
pub struct RemoteLockClient {
    http: reqwest::Client,
    api_url: Url,
    tokens: TokenManager,
    /// The account's, shared with every process through the database.
    budget: Budget,
    /// A device's type never changes; remembered so a grant needs no extra request.
    device_types: Arc<Mutex<HashMap<LockId, DeviceType>>>,
    revocation: Revocation,
}

/// `POST /oauth/revoke` on the OAuth host, with the client credentials as form fields
/// (remotelock-api.md §1.2).
#[derive(Clone)]
struct Revocation {
    url: Url,
    client_id: String,
    client_secret: SecretString,
}

/// What one attempt of a call came to, short of an error.
enum Answer {
    Success(Vec<u8>),
    TokenRefused(StatusCode),
}

impl RemoteLockClient {
    pub fn new(
        settings: &RemoteLockSettings,
        tokens: TokenManager,
    ) -> Result<Self, RemoteLockError> {
        if settings.api_url.cannot_be_a_base() {
            return Err(RemoteLockError::configuration(
                "remotelock.api_url must be an http(s) URL",
                format!("{} has no path", settings.api_url),
            ));
        }
        let revocation_url = base_url(&settings.oauth_url)
            .join("oauth/revoke")
            .map_err(|e| {
                RemoteLockError::configuration("remotelock.oauth_url cannot take a path", e)
            })?;
        let budget = Budget::new(tokens.pool().clone());
        Ok(Self {
            http: http_client(settings.request_timeout)?,
            api_url: base_url(&settings.api_url),
            tokens,
            budget,
            device_types: Arc::default(),
            revocation: Revocation {
                url: revocation_url,
                client_id: settings.client_id.clone(),
                client_secret: settings.client_secret.clone(),
            },
        })
    }

    /// The API calls, for work of `urgency`: there is no call without one, so nothing spends
    /// the account's budget unclassified.
    pub fn for_work(&self, urgency: Urgency) -> Work {
        Work {
            client: self.clone(),
            urgency,
            prepaid: Mutex::default(),
            booking: None,
        }
    }

    /// Revokes tokens lockbridge will not keep (RFC 7009): the refresh token first, which
    /// ends its access tokens too, then the access token, for a server that does not.
    pub async fn revoke(&self, tokens: &TokenSet) -> Result<(), RemoteLockError> {
        for token in tokens.refresh_token.iter().chain([&tokens.access_token]) {
            self.revoke_one(token).await?;
        }
        Ok(())
    }

    async fn revoke_one(&self, token: &SecretString) -> Result<(), RemoteLockError> {
        let transport = |e: reqwest::Error| {
            RemoteLockError::transient(TransientCause::Transport(e.without_url()))
        };
        let Revocation {
            url,
            client_id,
            client_secret,
        } = &self.revocation;
        let response = self
            .http
            .post(url.clone())
            .form(&[
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.expose_secret()),
                ("token", token.expose_secret()),
            ])
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().await.map_err(transport)?;
        Err(error_from_answer(status, &body, None))
    }

    fn remember_types(&self, devices: &[Device]) {
        self.known_types().extend(
            devices
                .iter()
                .map(|device| (device.id.clone(), device.device_type.clone())),
        );
    }

    fn known_types(&self) -> std::sync::MutexGuard<'_, HashMap<LockId, DeviceType>> {
        self.device_types
            .lock()
            .expect("device type cache poisoned")
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .expect("checked in new: the API URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }
}

/// RemoteLock calls for one piece of work (a booking's run, a poll, a staff request), all of
/// one urgency. Requests it took ahead and did not send go back to the process's budget.
pub struct Work {
    client: RemoteLockClient,
    urgency: Urgency,
    prepaid: Mutex<Grant>,
    /// The booking the calls are made for: each is recorded for `lockbridge trace`.
    booking: Option<BookingId>,
}

impl Work {
    /// Records each call of this work as made for `booking` (table `remotelock_calls`).
    pub fn for_booking(mut self, booking: &BookingId) -> Self {
        self.booking = Some(booking.clone());
        self
    }

    /// Takes `requests` from the budget at once, for an operation that must not stop halfway
    /// for lack of them (a new guest and its grant): it does not start instead.
    pub async fn prepay(&self, requests: u32) -> Result<(), RemoteLockError> {
        if requests == 0 {
            return Ok(());
        }
        let grant = self.client.budget.take(self.urgency, requests).await?;
        let old = std::mem::replace(&mut *self.prepaid(), grant);
        self.client.budget.give_back(self.urgency, old);
        Ok(())
    }

    fn prepaid(&self) -> std::sync::MutexGuard<'_, Grant> {
        self.prepaid.lock().expect("prepaid requests poisoned")
    }

    /// One request of the budget: prepaid, else taken now.
    async fn take_one(&self) -> Result<(), RemoteLockError> {
        if self.prepaid().spend(1, Utc::now()).is_some() {
            return Ok(());
        }
        self.client.budget.take(self.urgency, 1).await.map(drop)
    }

    /// The account the stored authorization acts on.
    pub async fn account(&self) -> Result<Account, RemoteLockError> {
        self.get_one(self.client.url(&["account"])).await
    }

    /// The account `tokens` act on, asked with their access token alone: for tokens that are
    /// not stored (yet), so the stored authorization is neither used nor refreshed.
    pub async fn account_for(&self, tokens: &TokenSet) -> Result<Account, RemoteLockError> {
        let url = self.client.url(&["account"]);
        match self
            .attempt(&Method::GET, &url, None::<&()>, &tokens.access_token)
            .await?
        {
            Answer::Success(body) => Ok(decode::<Document<Account>>(&body)?.data.0),
            // Refreshing would not help: these tokens were just issued.
            Answer::TokenRefused(status) => Err(RemoteLockError::Rejected {
                status,
                message: "refused the access token it had just issued".to_owned(),
            }),
        }
    }

    pub async fn locations(&self) -> Result<Vec<Location>, RemoteLockError> {
        self.get_all(self.client.url(&["locations"])).await
    }

    /// The account's devices that can take a guest's PIN.
    pub async fn locks(&self) -> Result<Vec<Device>, RemoteLockError> {
        // Filtered here rather than with `type[]`: RemoteLock documents that filter for only
        // some of the lock types.
        let mut devices: Vec<Device> = self.get_all(self.client.url(&["devices"])).await?;
        devices.retain(|device| device.device_type.is_lock());
        self.client.remember_types(&devices);
        Ok(devices)
    }

    pub async fn device(&self, id: &LockId) -> Result<Device, RemoteLockError> {
        let device: Device = self
            .get_one(self.client.url(&["devices", id.as_str()]))
            .await?;
        self.client.remember_types(std::slice::from_ref(&device));
        Ok(device)
    }

    /// Not idempotent: record the intent (the guest's name) before, and look the guest up
    /// with [`Self::find_access_guests`] before creating again after a lost answer.
    pub async fn create_access_guest(
        &self,
        guest: &NewAccessGuest<'_>,
    ) -> Result<AccessGuest, RemoteLockError> {
        let body = RequestBody {
            resource_type: Some("access_guest"),
            attributes: GuestAttributes::from(guest),
        };
        self.send(Method::POST, self.client.url(&["access_persons"]), &body)
            .await
    }

    /// The newest guests named exactly `name`, whatever their status, newest first: one page,
    /// one request. Names carry the booking id, so only the attempts lockbridge itself made for
    /// one booking share a name; paging through the account would spend its rate limit.
    pub async fn find_access_guests(
        &self,
        name: &str,
    ) -> Result<Vec<AccessGuest>, RemoteLockError> {
        let mut url = self.client.url(&["access_persons"]);
        url.query_pairs_mut()
            .append_pair("type", "access_guest")
            .append_pair("attributes[name]", name)
            .append_pair("sort", "-created_at")
            // Without a status filter RemoteLock lists only current and upcoming guests.
            .extend_pairs(
                GuestStatus::ALL
                    .iter()
                    .map(|status| ("attributes[status][]", status.as_str())),
            )
            .append_pair("page", "1")
            .append_pair("per_page", &PER_PAGE.to_string());
        let body = self.call(Method::GET, url, None::<&()>).await?;
        let mut guests: Vec<AccessGuest> = decode::<Page<AccessGuest>>(&body)?
            .data
            .into_iter()
            .map(|record| record.0)
            .collect();
        // The name filter is RemoteLock's generic attribute filter, not documented for names:
        // make sure.
        guests.retain(|guest| guest.name == name);
        Ok(guests)
    }

    /// Every event of the account created since `since`, newest first, at most
    /// `MAX_EVENT_PAGES` pages: one request when nothing new happened. Sorted by `created_at`,
    /// not the default `occurred_at`: a lock that was offline uploads its events late, and
    /// only their creation is after the cursor (remotelock-api.md §3.9, "Recovery").
    pub async fn events_since(&self, since: DateTime<Utc>) -> Result<Vec<Event>, RemoteLockError> {
        let mut events = Vec::new();
        for page in 1..=MAX_EVENT_PAGES {
            let mut url = self.client.url(&["events"]);
            url.query_pairs_mut()
                .append_pair("sort", "-created_at")
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &PER_PAGE.to_string());
            let body = self.call(Method::GET, url, None::<&()>).await?;
            let page_of = decode::<Page<Event>>(&body)?;
            let before = events.len();
            events.extend(
                page_of
                    .data
                    .into_iter()
                    .map(|record| record.0)
                    .take_while(|event: &Event| event.created_at >= since),
            );
            let all_new = events.len() - before == PER_PAGE as usize;
            if !all_new || page >= page_of.meta.total_pages {
                break;
            }
        }
        Ok(events)
    }

    /// The guests of `ids` that exist, whatever their status: one request per 50 ids
    /// (`id[]` filter, remotelock-api.md §2.3), rather than one each. A guest deleted in
    /// RemoteLock is simply not among them.
    pub async fn access_guests(
        &self,
        ids: &[GuestId],
    ) -> Result<Vec<AccessGuest>, RemoteLockError> {
        let mut guests = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PER_PAGE as usize) {
            let mut url = self.client.url(&["access_persons"]);
            url.query_pairs_mut()
                .append_pair("type", "access_guest")
                .extend_pairs(chunk.iter().map(|id| ("id[]", id.as_str())))
                // Without a status filter RemoteLock lists only current and upcoming guests.
                .extend_pairs(
                    GuestStatus::ALL
                        .iter()
                        .map(|status| ("attributes[status][]", status.as_str())),
                )
                .append_pair("page", "1")
                .append_pair("per_page", &PER_PAGE.to_string());
            let body = self.call(Method::GET, url, None::<&()>).await?;
            guests.extend(
                decode::<Page<AccessGuest>>(&body)?
                    .data
                    .into_iter()
                    .map(|record| record.0),
            );
        }
        Ok(guests)
    }

    /// Every grant that reaches the lock (on it or on its location), of guests only: one
    /// request per 50 grants, for all the bookings on the lock at once.
    pub async fn lock_accesses(&self, lock: &LockId) -> Result<Vec<Access>, RemoteLockError> {
        let mut url = self
            .client
            .url(&["devices", lock.as_str(), "access_person_accesses"]);
        url.query_pairs_mut()
            .append_pair("attributes[access_person_type]", "access_guest");
        self.get_all(url).await
    }

    /// Subscribes `url` (HTTPS, the admin's `/remotelock/webhook`) to the account's events,
    /// sending back `secret`: once, or again to bring a subscriber for that URL up to date
    /// (its secret, active again after RemoteLock deactivated it) without a second one.
    pub async fn register_webhook(
        &self,
        url: &str,
        secret: &SecretString,
    ) -> Result<webhooks::Registered, RemoteLockError> {
        let subscribers: Vec<webhooks::Subscriber> = self
            .get_all(self.client.url(&["notification_subscribers"]))
            .await?;
        let secret = secret.expose_secret();
        let existing = subscribers.into_iter().find(|s| {
            s.subscriber_type == webhooks::SUBSCRIBER_TYPE && s.url.as_deref() == Some(url)
        });
        let body = webhooks::subscriber_body(url, secret);
        let (subscriber, registered) = match existing {
            Some(found) => {
                let path = ["notification_subscribers", found.id.as_str()];
                let _: webhooks::Subscriber = self
                    .send(Method::PUT, self.client.url(&path), &body)
                    .await?;
                (found.id, webhooks::Registered::Updated)
            }
            None => {
                let url = self.client.url(&["notification_subscribers"]);
                let made: webhooks::Subscriber = self.send(Method::POST, url, &body).await?;
                (made.id, webhooks::Registered::Created)
            }
        };
        let subscriptions: Vec<webhooks::Subscription> = self
            .get_all(self.client.url(&["notification_subscriptions"]))
            .await?;
        let subscribed = subscriptions.iter().any(|s| {
            s.subscriber_id.as_deref() == Some(subscriber.as_str())
                && s.publisher_type.as_deref() == Some("account")
        });
        if !subscribed {
            let account = self.account().await?;
            let body = webhooks::subscription_body(&account.id, &subscriber);
            let url = self.client.url(&["notification_subscriptions"]);
            let _: webhooks::Subscription = self.send(Method::POST, url, &body).await?;
        }
        Ok(registered)
    }

    pub async fn access_guest(&self, id: &GuestId) -> Result<AccessGuest, RemoteLockError> {
        self.get_one(self.client.url(&["access_persons", id.as_str()]))
            .await
    }

    /// Moves the guest's window and/or changes its PIN. RemoteLock refuses updates to
    /// expired and deactivated guests.
    pub async fn update_access_guest(
        &self,
        id: &GuestId,
        update: &GuestUpdate<'_>,
    ) -> Result<AccessGuest, RemoteLockError> {
        let body = RequestBody {
            resource_type: Some("access_guest"),
            attributes: GuestAttributes::from(*update),
        };
        self.send(
            Method::PUT,
            self.client.url(&["access_persons", id.as_str()]),
            &body,
        )
        .await
    }

    /// Ends the guest's access on every lock, keeping its history in RemoteLock.
    pub async fn deactivate_access_guest(&self, id: &GuestId) -> Result<(), RemoteLockError> {
        let url = self
            .client
            .url(&["access_persons", id.as_str(), "deactivate"]);
        self.call(Method::PUT, url, None::<&()>).await?;
        Ok(())
    }

    pub async fn grant_lock(
        &self,
        guest: &GuestId,
        lock: &LockId,
    ) -> Result<Access, RemoteLockError> {
        let device_type = self.device_type(lock).await?;
        let body = RequestBody {
            resource_type: None,
            attributes: GrantAttributes {
                accessible_type: device_type.as_str(),
                accessible_id: lock,
            },
        };
        self.send(
            Method::POST,
            self.client
                .url(&["access_persons", guest.as_str(), "accesses"]),
            &body,
        )
        .await
    }

    pub async fn accesses(&self, guest: &GuestId) -> Result<Vec<Access>, RemoteLockError> {
        self.get_all(
            self.client
                .url(&["access_persons", guest.as_str(), "accesses"]),
        )
        .await
    }

    pub async fn revoke_access(
        &self,
        guest: &GuestId,
        access: &AccessId,
    ) -> Result<(), RemoteLockError> {
        let url = self.client.url(&[
            "access_persons",
            guest.as_str(),
            "accesses",
            access.as_str(),
        ]);
        self.call(Method::DELETE, url, None::<&()>).await?;
        Ok(())
    }

    async fn device_type(&self, lock: &LockId) -> Result<DeviceType, RemoteLockError> {
        let known = self.client.known_types().get(lock).cloned();
        match known {
            Some(device_type) => Ok(device_type),
            None => Ok(self.device(lock).await?.device_type),
        }
    }

    async fn get_one<T: DeserializeOwned>(&self, url: Url) -> Result<T, RemoteLockError> {
        let body = self.call(Method::GET, url, None::<&()>).await?;
        Ok(decode::<Document<T>>(&body)?.data.0)
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &B,
    ) -> Result<T, RemoteLockError> {
        let answer = self.call(method, url, Some(body)).await?;
        Ok(decode::<Document<T>>(&answer)?.data.0)
    }

    /// Every page of a collection, 50 records at a time.
    ///
    /// Takes a finished URL rather than borrowed path and query pieces: a future holding
    /// nested borrows trips rustc's higher-ranked `Send` check in axum handlers.
    async fn get_all<T: DeserializeOwned>(
        &self,
        collection: Url,
    ) -> Result<Vec<T>, RemoteLockError> {
        let mut records = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = collection.clone();
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &PER_PAGE.to_string());
            let body = self.call(Method::GET, url, None::<&()>).await?;
            let page_of = decode::<Page<T>>(&body)?;
            records.extend(page_of.data.into_iter().map(|record| record.0));
            if page >= page_of.meta.total_pages {
                break;
            }
        }
        Ok(records)
    }

    /// One call: with the current token, and once more with a refreshed token if RemoteLock
    /// refuses it (401 or 403: the docs and the usual practice disagree on which).
    async fn call<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Vec<u8>, RemoteLockError> {
        let token = self.client.tokens.access_token().await?;
        let status = match self.attempt(&method, &url, body, &token).await? {
            Answer::Success(body) => return Ok(body),
            Answer::TokenRefused(status) => status,
        };
        tracing::info!(
            status = status.as_u16(),
            "RemoteLock refused the access token; refreshing it"
        );
        let token = self.client.tokens.refresh_after_rejection(&token).await?;
        match self.attempt(&method, &url, body, &token).await? {
            Answer::Success(body) => Ok(body),
            // A token that was just refreshed is good: RemoteLock refuses this request for another
            // reason (e.g. an expired guest), which re-authorizing would not cure.
            Answer::TokenRefused(status) => Err(RemoteLockError::Rejected {
                status,
                message: "refused even with a freshly refreshed access token".to_owned(),
            }),
        }
    }

    async fn attempt<B: Serialize>(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&B>,
        token: &SecretString,
    ) -> Result<Answer, RemoteLockError> {
        // Without the URL: its query can carry a guest's (the patron's) name.
        let transport = |e: reqwest::Error| {
            RemoteLockError::transient(TransientCause::Transport(e.without_url()))
        };
        let mut request = self
            .client
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.expose_secret())
            .header(ACCEPT, MEDIA_TYPE);
        // RemoteLock requires a JSON body on every write (remotelock-api.md §1.3), even one
        // with nothing to say, such as a deactivation.
        request = match body {
            Some(body) => request.json(body),
            None if is_write(method) => request.json(&serde_json::Map::new()),
            None => request,
        };
        self.take_one().await?;
        let started = Instant::now();
        let endpoint = endpoint(method, url);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                self.count(method, url, None, endpoint, started).await;
                return Err(transport(error));
            }
        };
        let status = response.status();
        self.count(method, url, Some(status), endpoint, started)
            .await;
        let window = self
            .client
            .budget
            .observe(response.headers(), status == StatusCode::TOO_MANY_REQUESTS)
            .await;
        if let Some(window) = &window {
            metrics::gauge!("lockbridge_remotelock_budget_remaining")
                .set(f64::from(window.remaining));
        }
        // The path only: a query can carry a guest's name.
        tracing::debug!(
            %method,
            path = url.path(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            remaining = window.map(|w| w.remaining),
            "RemoteLock answered"
        );
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Ok(Answer::TokenRefused(status));
        }
        let answer = response.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            Ok(Answer::Success(answer))
        } else {
            Err(error_from_answer(status, &answer, window))
        }
    }
}

impl Work {
    /// Counts a request in the metrics and, for a booking's work, records it.
    async fn count(
        &self,
        method: &Method,
        url: &Url,
        status: Option<StatusCode>,
        endpoint: String,
        started: Instant,
    ) {
        let outcome = status.map_or("transport_error", outcome);
        let elapsed = started.elapsed();
        metrics::histogram!("lockbridge_remotelock_request_duration_seconds", "endpoint" => endpoint.clone())
            .record(elapsed.as_secs_f64());
        metrics::counter!("lockbridge_remotelock_requests_total", "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
        let Some(booking) = &self.booking else {
            return;
        };
        let recorded = sqlx::query(
            "INSERT INTO remotelock_calls (booking_id, method, path, status, outcome, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(booking)
        .bind(method.as_str())
        .bind(url.path())
        .bind(status.map(|s| s.as_u16() as i16))
        .bind(outcome)
        .bind(i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX))
        .execute(self.client.tokens.pool())
        .await;
        // The call was made either way: a lost record only leaves a gap in a trace.
        if let Err(error) = recorded {
            tracing::warn!(%booking, error = %error, "cannot record a RemoteLock call for the trace");
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let unspent = std::mem::take(&mut *self.prepaid());
        self.client.budget.give_back(self.urgency, unspent);
    }
}

/// The call without its ids (`POST /access_persons/:id/accesses`), a label of few values.
fn endpoint(method: &Method, url: &Url) -> String {
    let path: Vec<&str> = url
        .path()
        .split('/')
        .map(|segment| {
            let id = segment.parse::<uuid::Uuid>().is_ok()
                || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()));
            if id { ":id" } else { segment }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}

fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "ok",
        429 => "rate_limited",
        401 | 403 => "token_refused",
        400..=499 => "refused",
        _ => "server_error",
    }
}

fn is_write(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH].contains(method)
}

/// The client for both hosts: bounded in time, and never following a redirect with our
/// credentials to somewhere else.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, RemoteLockError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirect::Policy::none())
        .user_agent(concat!("lockbridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RemoteLockError::configuration("cannot build the HTTP client", e))
}

/// `url` with a trailing slash, so joining a relative path keeps its last segment
/// (`https://api.example/v1` + `devices` → `…/v1/devices`).
pub(crate) fn base_url(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RemoteLockError> {
    serde_json::from_slice(body).map_err(RemoteLockError::Decode)
}

/// Maps an unsuccessful answer (remotelock-api.md §2.4, §2.5). Bodies are never quoted
/// whole: a resource error echoes the submitted attributes, PIN included.
fn error_from_answer(status: StatusCode, body: &[u8], window: Option<Window>) -> RemoteLockError {
    #[derive(Deserialize)]
    struct GeneralError {
        message: String,
        #[serde(rename = "type")]
        error_type: Option<String>,
    }
    #[derive(Deserialize)]
    struct ResourceError {
        errors: Vec<FieldError>,
    }
    let message = || match serde_json::from_slice::<GeneralError>(body) {
        Ok(GeneralError {
            message,
            error_type: Some(error_type),
        }) => format!("{message} ({error_type})"),
        Ok(GeneralError { message, .. }) => message,
        Err(_) => status.canonical_reason().unwrap_or("no message").to_owned(),
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS => RemoteLockError::Transient {
            cause: TransientCause::RateLimited,
            retry_after: window.map(|window| window.wait(Utc::now())),
        },
        status if status.is_server_error() => RemoteLockError::transient(TransientCause::Server {
            status,
            message: message(),
        }),
        StatusCode::NOT_FOUND => RemoteLockError::NotFound { message: message() },
        StatusCode::CONFLICT => RemoteLockError::Conflict { message: message() },
        status => match serde_json::from_slice::<ResourceError>(body) {
            Ok(ResourceError { errors }) => RemoteLockError::Validation { status, errors },
            Err(_) => RemoteLockError::Rejected {
                status,
                message: message(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The services call the client from spawned tasks and axum handlers, which need futures
    /// that are `Send` whatever the lifetimes of their borrows. Checked at compile time.
    fn spawnable<F: Future + Send + 'static>(_: F) {}

    #[allow(dead_code)]
    fn client_futures_are_send(
        remotelock: RemoteLockClient,
        set: crate::TokenSet,
        (guest, lock, access): (GuestId, LockId, AccessId),
        (pin, window): (lockbridge_domain::Pin, lockbridge_domain::LockLocalWindow),
    ) {
        spawnable(async move {
            let client = remotelock.for_work(Urgency::Routine);
            let _ = client.prepay(2).await;
            let _ = remotelock.revoke(&set).await;
            let new = NewAccessGuest {
                name: "n",
                email: None,
                pin: &pin,
                window: &window,
            };
            let update = GuestUpdate::default();
            let _ = client.account().await;
            let _ = client.account_for(&set).await;
            let _ = client.locations().await;
            let _ = client.locks().await;
            let _ = client.device(&lock).await;
            let _ = client.create_access_guest(&new).await;
            let _ = client.find_access_guests("n").await;
            let _ = client.access_guest(&guest).await;
            let _ = client.access_guests(std::slice::from_ref(&guest)).await;
            let _ = client.lock_accesses(&lock).await;
            let _ = client.update_access_guest(&guest, &update).await;
            let _ = client.deactivate_access_guest(&guest).await;
            let _ = client.grant_lock(&guest, &lock).await;
            let _ = client.accesses(&guest).await;
            let _ = client.revoke_access(&guest, &access).await;
            let _ = client.events_since(chrono::Utc::now()).await;
        });
    }

    #[allow(dead_code)]
    fn token_futures_are_send(
        tokens: crate::TokenManager,
        oauth: crate::OAuthClient,
        set: crate::TokenSet,
        account: Account,
        pool: sqlx::PgPool,
    ) {
        spawnable(async move {
            let _ = oauth.exchange_code("code").await;
            let _ = oauth.refresh(&set.access_token).await;
            let _ = tokens.save(&set, None, None).await;
            if let Ok(mut tx) = pool.begin().await {
                let _ = tokens.save_in(&mut tx, &set, None, None).await;
            }
            let _ = tokens.record_account(&account).await;
            let _ = tokens.access_token().await;
            let _ = tokens.refresh_after_rejection(&set.access_token).await;
        });
    }

    #[test]
    fn base_url_keeps_the_last_segment() {
        let url = |s: &str| base_url(&Url::parse(s).unwrap()).to_string();
        assert_eq!(
            url("https://api.remotelock.com"),
            "https://api.remotelock.com/"
        );
        assert_eq!(url("http://sim:4010/v1"), "http://sim:4010/v1/");
        assert_eq!(url("http://sim:4010/v1/"), "http://sim:4010/v1/");
    }

    #[test]
    fn answers_map_to_errors() {
        let resource_error = br#"{"attributes": {"pin": "482193"},
            "errors": [{"attribute": "pin", "messages": ["has already been taken"],
                        "full_messages": ["pin has already been taken"]}]}"#;
        let error = error_from_answer(StatusCode::UNPROCESSABLE_ENTITY, resource_error, None);
        assert!(error.is_pin_taken());
        assert!(!error.to_string().contains("482193"));

        let billing = br#"{"message": "Please create a subscription",
                           "type": "billing_subscription_required"}"#;
        match error_from_answer(StatusCode::PAYMENT_REQUIRED, billing, None) {
            RemoteLockError::Rejected { status, message } => {
                assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
                assert_eq!(
                    message,
                    "Please create a subscription (billing_subscription_required)"
                );
            }
            other => panic!("{other:?}"),
        }

        let unavailable = error_from_answer(StatusCode::BAD_GATEWAY, b"<html>", None);
        assert!(unavailable.is_transient());
        assert!(unavailable.to_string().contains("unavailable"));

        assert!(matches!(
            error_from_answer(StatusCode::NOT_FOUND, b"{}", None),
            RemoteLockError::NotFound { .. }
        ));
        assert!(matches!(
            error_from_answer(StatusCode::CONFLICT, b"", None),
            RemoteLockError::Conflict { .. }
        ));
    }

    #[test]
    fn rate_limited_answers_say_when_to_retry() {
        let window = Window {
            limit: 120,
            remaining: 0,
            resets_at: Utc::now() + Duration::from_secs(30),
        };
        let error = error_from_answer(StatusCode::TOO_MANY_REQUESTS, b"{}", Some(window));
        assert!(error.is_transient());
        let wait = error.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(31),
            "{wait:?}"
        );
    }
}
