//! The catalogue's spaces with their links; `?linkable=true` keeps those a lock can be linked
//! to: bookable as a whole and not linked yet.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use chrono::{DateTime, Utc};
use lockbridge_domain::{CategoryId, LocationId, LockId, SpaceId, SpaceKind, TimeZone};
use lockbridge_http::problem::Problem;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::startup::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/spaces", get(list))
}

#[derive(Deserialize)]
struct Filter {
    #[serde(default)]
    linkable: bool,
}

#[derive(Serialize)]
struct Spaces {
    spaces: Vec<SpaceView>,
}

#[derive(Serialize)]
pub(crate) struct SpaceView {
    pub space_id: SpaceId,
    pub name: String,
    kind: SpaceKind,
    pub category: CategoryView,
    pub location: LocationView,
    pub link: Option<LinkView>,
}

impl SpaceView {
    /// Only such a space can have a lock (the schema insists).
    pub fn is_bookable_as_whole(&self) -> bool {
        self.kind == SpaceKind::BookableAsWhole
    }
}

#[derive(Serialize)]
pub(crate) struct CategoryView {
    pub category_id: CategoryId,
    pub name: String,
}

#[derive(Serialize)]
pub(crate) struct LocationView {
    pub location_id: LocationId,
    pub name: String,
    pub time_zone: TimeZone,
}

#[derive(Serialize)]
pub(crate) struct LinkView {
    pub lock_id: LockId,
    pub lock_name: String,
    pub linked_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    space_id: SpaceId,
    name: String,
    kind: SpaceKind,
    category_id: CategoryId,
    category_name: String,
    location_id: LocationId,
    location_name: String,
    time_zone: String,
    lock_id: Option<LockId>,
    lock_name: Option<String>,
    linked_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for SpaceView {
    type Error = Problem;

    fn try_from(row: Row) -> Result<Self, Problem> {
        // booking-intake validated the zone; a bad one means the row was edited by hand.
        let time_zone = row.time_zone.parse::<TimeZone>().map_err(|error| {
            tracing::error!(location_id = %row.location_id, %error, "stored time zone unreadable");
            Problem::unavailable("a location's stored time zone cannot be read")
        })?;
        let link = match (row.lock_id, row.lock_name, row.linked_at) {
            (Some(lock_id), Some(lock_name), Some(linked_at)) => Some(LinkView {
                lock_id,
                lock_name,
                linked_at,
            }),
            _ => None,
        };
        Ok(Self {
            space_id: row.space_id,
            name: row.name,
            kind: row.kind,
            category: CategoryView {
                category_id: row.category_id,
                name: row.category_name,
            },
            location: LocationView {
                location_id: row.location_id,
                name: row.location_name,
                time_zone,
            },
            link,
        })
    }
}

async fn list(
    State(state): State<AppState>,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Result<Json<Spaces>, Problem> {
    let Query(filter) =
        filter.map_err(|_| Problem::invalid_field("linkable", "must be true or false"))?;
    Ok(Json(Spaces {
        spaces: catalogue(&state.pool, filter.linkable).await?,
    }))
}

/// Every space with its category, location and link, by location, category and name; only
/// those a lock can be linked to when `linkable`.
pub(crate) async fn catalogue(pool: &PgPool, linkable: bool) -> Result<Vec<SpaceView>, Problem> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.space_id, s.name, s.kind,
                c.category_id, c.name AS category_name,
                loc.location_id, loc.name AS location_name, loc.time_zone,
                l.lock_id, l.lock_name, l.linked_at
         FROM spaces s
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations loc ON loc.location_id = c.location_id
         LEFT JOIN lock_links l ON l.space_id = s.space_id
         WHERE NOT $1 OR (s.kind = 'bookable_as_whole' AND l.space_id IS NULL)
         ORDER BY loc.name, c.name, s.name, s.space_id",
    )
    .bind(linkable)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(SpaceView::try_from).collect()
}
