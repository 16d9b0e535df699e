//! Failures that need a person (design §3.4): the open ones, and running one again now. A
//! failure leaves the list by itself once what it is about works.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use lockbridge_http::problem::Problem;
use lockbridge_work::failures::{self, Failure, Retry};
use serde::Serialize;
use sqlx::PgPool;

use crate::startup::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/failures", get(list))
        .route("/api/v1/failures/{id}/retry", post(retry))
}

#[derive(Serialize)]
struct Failures {
    failures: Vec<Failure>,
}

async fn list(State(state): State<AppState>) -> Result<Json<Failures>, Problem> {
    Ok(Json(Failures {
        failures: failures::open(&state.pool).await?,
    }))
}

async fn retry(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id: i64 = raw_id.parse().map_err(|_| {
        Problem::invalid_field("id", "a failure id is a number (GET /api/v1/failures)")
    })?;
    retry_now(&state.pool, id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Runs the failure's work again now: the API's retry and the staff UI's Retry button.
pub(crate) async fn retry_now(pool: &PgPool, id: i64) -> Result<(), Problem> {
    match failures::retry(pool, id).await? {
        Retry::Started => {
            tracing::info!(failure_id = id, "staff retried a failure");
            Ok(())
        }
        Retry::NoSuchFailure => Err(Problem::not_found(format!("no failure {id}"))),
        Retry::AlreadyResolved => Err(Problem::conflict(
            "id",
            format!("failure {id} is resolved: nothing to retry"),
        )),
    }
}
