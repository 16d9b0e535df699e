//! Routes: the API under both `/1.1` and `/api/1.1` (doc §1: both prefixes are in use), the
//! `/_sim` controls beside them.

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, patch, post};

use crate::state::SimState;
use crate::{bookings, catalogue, control, guard, oauth, request_log};

pub type AppState = Arc<SimState>;

pub fn build(state: AppState) -> Router {
    let api = Router::new()
        .route("/space/locations", get(catalogue::locations))
        .route("/space/categories/{lids}", get(catalogue::categories))
        .route("/space/category/{cids}", get(catalogue::category))
        .route("/space/item/{ids}", get(catalogue::item_by_id))
        .route("/space/items/{lid}", get(catalogue::items_of_location))
        .route("/space/seats/{lid}", get(catalogue::seats_of_location))
        .route("/space/bookings", get(bookings::list))
        .route("/space/booking/{ids}", get(bookings::by_book_id))
        .route_layer(from_fn_with_state(state.clone(), guard::guard))
        .route("/oauth/token", post(oauth::token));
    let served = Router::new()
        .nest("/1.1", api.clone())
        .nest("/api/1.1", api)
        .layer(from_fn_with_state(state.clone(), request_log::record));
    let controls = Router::new()
        .route("/_sim/locations", post(control::location))
        .route("/_sim/categories", post(control::category))
        .route("/_sim/spaces", post(control::space))
        .route("/_sim/seats", post(control::seat))
        .route("/_sim/bookings", post(control::booking))
        .route(
            "/_sim/bookings/{book_id}/{action}",
            post(control::transition),
        )
        .route("/_sim/rows/{row_id}", patch(control::edit_row))
        .route("/_sim/faults", post(control::fault))
        .route("/_sim/requests", get(control::requests))
        .route("/_sim/tokens/revoke", post(control::revoke_tokens));
    served.merge(controls).with_state(state)
}
