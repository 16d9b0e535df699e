//! Locations, categories and spaces as the booking system describes them.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::put,
};
use lockbridge_domain::{CategoryId, LocationId, SpaceId, SpaceKind, TimeZone};
use lockbridge_http::{
    input::{Fields, JsonObject, MAX_NAME_LEN, path_id},
    problem::Problem,
};
use serde::Serialize;
use serde_json::Value;

use crate::startup::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/locations/{location_id}", put(put_location))
        .route("/v1/categories/{category_id}", put(put_category))
        .route("/v1/spaces/{space_id}", put(put_space))
}

/// 201 when the resource is new, 200 when it existed (changed or not).
fn created_or_ok<T: Serialize>(created: bool, body: T) -> (StatusCode, Json<T>) {
    (
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(body),
    )
}

/// Maps a foreign-key violation to the field whose reference is missing or in use.
fn reference_problem(error: sqlx::Error) -> Problem {
    let Some(db) = error.as_database_error() else {
        return error.into();
    };
    match db.constraint() {
        Some("categories_location_id_fkey") => Problem::invalid_field(
            "location_id",
            "no such location: create it first with PUT /v1/locations/{id}",
        ),
        Some("spaces_category_id_fkey") => Problem::invalid_field(
            "category_id",
            "no such category: create it first with PUT /v1/categories/{id}",
        ),
        Some("lock_links_space_id_space_kind_fkey") => Problem::conflict(
            "kind",
            "the space is linked to a lock, so it must stay bookable_as_whole; unlink it first",
        ),
        _ => error.into(),
    }
}

#[derive(Serialize)]
struct Location {
    location_id: LocationId,
    name: String,
    time_zone: TimeZone,
}

async fn put_location(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Location>), Problem> {
    let location_id = path_id("location_id", raw_id, LocationId::parse)?;
    let mut fields = Fields::new(&body);
    let name = fields.text("name", MAX_NAME_LEN);
    let time_zone = fields.parsed("time_zone", str::parse::<TimeZone>);
    fields.finish()?;
    let (name, time_zone) = (name.expect("checked"), time_zone.expect("checked"));
    let created: bool = sqlx::query_scalar(
        "INSERT INTO locations (location_id, name, time_zone) VALUES ($1, $2, $3)
         ON CONFLICT (location_id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone,
             updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(&location_id)
    .bind(&name)
    .bind(time_zone.name())
    .fetch_one(&state.pool)
    .await?;
    Ok(created_or_ok(
        created,
        Location {
            location_id,
            name,
            time_zone,
        },
    ))
}

#[derive(Serialize)]
struct Category {
    category_id: CategoryId,
    location_id: LocationId,
    name: String,
}

async fn put_category(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Category>), Problem> {
    let category_id = path_id("category_id", raw_id, CategoryId::parse)?;
    let mut fields = Fields::new(&body);
    let location_id = fields.parsed("location_id", |s| LocationId::parse(s));
    let name = fields.text("name", MAX_NAME_LEN);
    fields.finish()?;
    let (location_id, name) = (location_id.expect("checked"), name.expect("checked"));
    let created: bool = sqlx::query_scalar(
        "INSERT INTO categories (category_id, location_id, name) VALUES ($1, $2, $3)
         ON CONFLICT (category_id) DO UPDATE SET location_id = EXCLUDED.location_id,
             name = EXCLUDED.name, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(&category_id)
    .bind(&location_id)
    .bind(&name)
    .fetch_one(&state.pool)
    .await
    .map_err(reference_problem)?;
    Ok(created_or_ok(
        created,
        Category {
            category_id,
            location_id,
            name,
        },
    ))
}

#[derive(Serialize)]
struct Space {
    space_id: SpaceId,
    category_id: CategoryId,
    name: String,
    kind: SpaceKind,
}

fn parse_kind(text: &str) -> Result<SpaceKind, &'static str> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|_| "must be one of bookable_as_whole, container, seat")
}

async fn put_space(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Space>), Problem> {
    let space_id = path_id("space_id", raw_id, SpaceId::parse)?;
    let mut fields = Fields::new(&body);
    let category_id = fields.parsed("category_id", |s| CategoryId::parse(s));
    let name = fields.text("name", MAX_NAME_LEN);
    let kind = fields.parsed("kind", parse_kind);
    fields.finish()?;
    let (category_id, name, kind) = (
        category_id.expect("checked"),
        name.expect("checked"),
        kind.expect("checked"),
    );
    let created: bool = sqlx::query_scalar(
        "INSERT INTO spaces (space_id, category_id, name, kind) VALUES ($1, $2, $3, $4)
         ON CONFLICT (space_id) DO UPDATE SET category_id = EXCLUDED.category_id,
             name = EXCLUDED.name, kind = EXCLUDED.kind, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(&space_id)
    .bind(&category_id)
    .bind(&name)
    .bind(kind)
    .fetch_one(&state.pool)
    .await
    .map_err(reference_problem)?;
    Ok(created_or_ok(
        created,
        Space {
            space_id,
            category_id,
            name,
            kind,
        },
    ))
}
