//! Removing a link, after a confirmation page that says what it affects: the space's
//! upcoming bookings keep the PIN they have, and new ones get none.

use askama::Template;
use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use lockbridge_domain::{SpaceId, TimeZone};
use lockbridge_http::problem::Problem;

use super::{
    land_with_notice,
    page::{Chrome, Section, UiError, local_time, render, sentence},
    session::{NoFields, Posted},
};
use crate::{links, staff::sessions::Notice, staff::sessions::Session, startup::AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/links/{space_id}/remove", get(confirm).post(remove))
}

#[derive(Template)]
#[template(path = "unlink.html")]
struct UnlinkPage {
    chrome: Chrome,
    space_id: String,
    space: String,
    place: String,
    lock: String,
    since: String,
    upcoming_bookings: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    space_name: String,
    category_name: String,
    location_name: String,
    time_zone: String,
    lock_name: String,
    linked_at: chrono::DateTime<chrono::Utc>,
    upcoming_bookings: i64,
}

fn space_id(raw: String) -> Result<SpaceId, UiError> {
    SpaceId::parse(raw).map_err(|error| UiError::BadForm(format!("no such space: {error}")))
}

async fn confirm(
    State(state): State<AppState>,
    session: Session,
    Path(raw_id): Path<String>,
) -> Result<Response, UiError> {
    session.require_admin()?;
    let space_id = space_id(raw_id)?;
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.name AS space_name, c.name AS category_name, loc.name AS location_name,
                loc.time_zone, k.lock_name, k.linked_at,
                (SELECT count(*) FROM bookings b WHERE b.space_id = k.space_id
                   AND b.status = 'confirmed' AND b.ends_at > now()) AS upcoming_bookings
         FROM lock_links k
         JOIN spaces s USING (space_id)
         JOIN categories c ON c.category_id = s.category_id
         JOIN locations loc ON loc.location_id = c.location_id
         WHERE k.space_id = $1",
    )
    .bind(&space_id)
    .fetch_optional(&state.pool)
    .await?;
    let row =
        row.ok_or_else(|| Problem::not_found(format!("space {space_id} is not linked to a lock")))?;
    let page = UnlinkPage {
        chrome: Chrome::of(&session, Section::SmartLocks),
        space_id: space_id.to_string(),
        space: row.space_name,
        place: format!("{} › {}", row.location_name, row.category_name),
        lock: row.lock_name,
        since: local_time(row.linked_at, TimeZone::from_stored(&row.time_zone)),
        upcoming_bookings: row.upcoming_bookings,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn remove(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    posted: Posted<NoFields>,
) -> Result<Response, UiError> {
    posted.session.require_admin()?;
    let space_id = space_id(raw_id)?;
    let notice = match links::remove(&state.pool, &space_id).await {
        Ok(()) => Notice::done(format!(
            "The link of space {space_id} is removed: its bookings from now on get no PIN."
        )),
        Err(problem) => Notice::failed(sentence(&problem.detail)),
    };
    Ok(land_with_notice(&state.pool, &posted.session, &notice).await)
}
