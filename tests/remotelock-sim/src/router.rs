//! Wires routes and middleware. API requests pass, outermost first: request log → rate limit
//! (so every API answer carries the headers) → faults → version negotiation → bearer token →
//! JSON writes (Content-Type and body of POST/PUT/PATCH; after the token, as Rails checks it
//! before parsing params) → account confinement (a token for an added account sees none of
//! the seeded account's records).

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, put};

use crate::errors::ApiError;
use crate::notification_records::{delete, list, show};
use crate::notification_subscribers::{self as subscribers, Subscriber};
use crate::notification_subscriptions::{self as subscriptions, Subscription};
use crate::notifications::Notification;
use crate::state::AppState;
use crate::{
    access_persons, accesses, account, accounts, auth, control, devices, events, faults,
    json_writes, oauth, rate_limit, request_log, version,
};

pub fn build(state: AppState) -> Router {
    let api = Router::new()
        .route("/user", get(account::user))
        .route("/account", get(account::account))
        .route("/locations", get(account::locations))
        .route("/locations/{id}", get(account::location))
        .route("/devices", get(devices::list))
        .route("/devices/{id}", get(devices::show).delete(devices::delete))
        .route(
            "/devices/{id}/access_person_accesses",
            get(devices::accesses),
        )
        .route(
            "/access_persons",
            get(access_persons::list).post(access_persons::create),
        )
        .route(
            "/access_persons/{id}",
            get(access_persons::show)
                .put(access_persons::update)
                .delete(access_persons::delete),
        )
        .route(
            "/access_persons/{id}/deactivate",
            put(access_persons::deactivate),
        )
        .route(
            "/access_persons/{id}/accesses",
            get(accesses::list).post(accesses::create),
        )
        .route(
            "/access_persons/{id}/accesses/{access_id}",
            get(accesses::show)
                .put(accesses::update)
                .delete(accesses::delete),
        )
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::show))
        .route(
            "/notification_subscribers",
            get(list::<Subscriber>).post(subscribers::create),
        )
        .route(
            "/notification_subscribers/{id}",
            get(show::<Subscriber>)
                .put(subscribers::update)
                .delete(delete::<Subscriber>),
        )
        .route(
            "/notification_subscriptions",
            get(list::<Subscription>).post(subscriptions::create),
        )
        .route(
            "/notification_subscriptions/{id}",
            get(show::<Subscription>)
                .put(subscriptions::update)
                .delete(delete::<Subscription>),
        )
        .route("/notifications", get(list::<Notification>))
        .route("/notifications/{id}", get(show::<Notification>))
        .fallback(async || ApiError::not_found())
        .method_not_allowed_fallback(async || {
            ApiError::general(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "method_not_allowed",
            )
        })
        .layer(from_fn_with_state(state.clone(), accounts::confine))
        .layer(from_fn(json_writes::require))
        .layer(from_fn_with_state(state.clone(), auth::require_bearer))
        .layer(from_fn(version::negotiate))
        .layer(from_fn_with_state(state.clone(), faults::inject))
        .layer(from_fn_with_state(state.clone(), rate_limit::enforce));

    let oauth = oauth::routes().layer(from_fn_with_state(state.clone(), faults::inject));

    Router::new()
        .nest("/v1", api.clone())
        .merge(api)
        .merge(oauth)
        .merge(control::routes())
        .layer(from_fn_with_state(state.clone(), request_log::record))
        .with_state(state)
}
