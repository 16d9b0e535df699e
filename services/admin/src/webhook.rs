//! `POST /remotelock/webhook`: RemoteLock's notifications of the account's events
//! (remotelock-api.md §3.9). RemoteLock signs nothing: it sends back the subscriber's secret as
//! `X-Secret`, compared here in constant time with `remotelock.webhook_secret`. The event is
//! stored once by id (a retry, or the provisioner's poll, finds it there) and the
//! lock-provisioner, which applies it, is woken. RemoteLock wants a 2xx within 3 seconds, so
//! nothing else happens in the request; order is not assumed either.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    routing::post,
};
use lockbridge_http::{auth::token_matches, problem::Problem};
use lockbridge_remotelock::events::{self, Via};
use lockbridge_runtime::wakeup::Channel;

use crate::startup::AppState;

pub(crate) const PATH: &str = "/remotelock/webhook";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(PATH, post(receive))
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    let Some(secret) = &state.webhook_secret else {
        return Err(Problem::not_found(
            "webhooks are off: set remotelock.webhook_secret to receive them",
        ));
    };
    let presented = headers
        .get("x-secret")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !token_matches(secret, presented) {
        metrics::counter!("lockbridge_webhooks_total", "outcome" => "refused").increment(1);
        return Err(Problem::unauthorized(
            "X-Secret is missing or is not remotelock.webhook_secret",
        ));
    }
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json {
        return Err(Problem::unsupported_media_type());
    }
    let event = events::from_webhook(&body).map_err(|error| {
        metrics::counter!("lockbridge_webhooks_total", "outcome" => "malformed").increment(1);
        Problem::malformed(format!("not a RemoteLock event notification: {error}"))
    })?;
    let mut tx = state.pool.begin().await?;
    let new = events::store(&mut *tx, &event, Via::Webhook).await?;
    if new {
        Channel::named(events::STORED_CHANNEL)
            .notify(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let outcome = if new { "stored" } else { "duplicate" };
    metrics::counter!("lockbridge_webhooks_total", "outcome" => outcome).increment(1);
    tracing::debug!(event_id = %event.id, kind = event.kind(), outcome, "RemoteLock webhook");
    Ok(StatusCode::NO_CONTENT)
}
