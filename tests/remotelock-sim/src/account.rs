//! `GET /user`, `GET /account`, `GET /locations[/:id]` (remotelock-api.md §3.1, §3.2). The
//! user is the same for every account; `/account` is the one the token acts on.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use crate::accounts::ActingAccount;
use crate::catalog::Location;
use crate::envelope::{ApiBase, Collection, Resource, Single, resource_id, timestamp};
use crate::errors::{ApiError, ApiResult};
use crate::listing::{ListQuery, ListSpec};
use crate::state::AppState;

const LOCATIONS: ListSpec = ListSpec {
    sortable: &["created_at", "name"],
    default_sort: "name",
};

pub async fn user(State(state): State<AppState>, base: ApiBase) -> Json<Single> {
    let (user, account) = (&state.catalog.user, &state.catalog.account);
    let attributes = json!({
        "name": user.name,
        "email": user.email,
        "handle": user.handle,
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.created_at),
        "primary_account_id": account.id,
        "default_account_id": account.id,
    });
    Json(Single {
        data: Resource::new("user", user.id, attributes, base.url("/user"))
            .link("primary_account", base.url("/account"))
            .link("default_account", base.url("/account")),
    })
}

pub async fn account(
    State(state): State<AppState>,
    Extension(ActingAccount(id)): Extension<ActingAccount>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    // Accounts are never removed, so a token's account is always there.
    let account = state.accounts.get(id).ok_or_else(ApiError::not_found)?;
    let attributes = json!({
        "name": account.name,
        "created_at": timestamp(account.created_at),
        "updated_at": timestamp(account.created_at),
        "default_guest_start_time": "16:00:00",
        "default_guest_end_time": "11:00:00",
        "rental_guest_time_override": false,
        "primary_owner_id": state.catalog.user.id,
        "owner_role_id": account.owner_role_id,
    });
    Ok(Json(Single {
        data: Resource::new("account", account.id, attributes, base.url("/account"))
            .link("primary_owner", base.url("/user")),
    }))
}

pub async fn locations(
    State(state): State<AppState>,
    base: ApiBase,
    query: ListQuery,
) -> ApiResult<Json<Collection>> {
    let all = state
        .catalog
        .locations
        .iter()
        .map(|l| location_resource(l, &base))
        .collect();
    query.apply(&LOCATIONS, all).map(Json)
}

pub async fn location(
    State(state): State<AppState>,
    Path(id): Path<String>,
    base: ApiBase,
) -> ApiResult<Json<Single>> {
    let location = state
        .catalog
        .location(resource_id(&id)?)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(Single {
        data: location_resource(location, &base),
    }))
}

fn location_resource(location: &Location, base: &ApiBase) -> Resource {
    let attributes = json!({
        "name": location.name,
        "phone": location.phone,
        "address": location.address,
        "address2": null,
        "city": location.city,
        "state": location.state,
        "postal_code": location.postal_code,
        "country": location.country,
        "time_zone": location.time_zone.name(),
        "created_at": timestamp(location.created_at),
        "updated_at": timestamp(location.created_at),
    });
    Resource::new(
        "location",
        location.id,
        attributes,
        base.url(format_args!("/locations/{}", location.id)),
    )
}
