//! Each status hook shows in the bookings answer; staff edits keep the row's id.

mod common;

use common::{Api, at};
use libcal_sim::{CancelledBy, RowEdit, SimConfig, SimError, Status};
use serde_json::Value;

const FROM: &str = "2026-07-01T14:00:00Z";
const TO: &str = "2026-07-01T15:00:00Z";

async fn rows(api: &Api, query: &str) -> Vec<Value> {
    api.ok(&format!("1.1/space/bookings?date=2026-07-01&{query}"))
        .await
}

async fn status_of(api: &Api) -> Vec<String> {
    let rows = rows(api, "").await;
    rows.iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tentative_is_confirmed_and_hidden_by_include_tentative_0() {
    let api = Api::start().await;
    let id = api.book_room(Status::Tentative, FROM, TO);
    assert_eq!(status_of(&api).await, ["Tentative"]);
    assert!(rows(&api, "include_tentative=0").await.is_empty());
    api.sim.confirm(&id).unwrap();
    assert_eq!(status_of(&api).await, ["Confirmed"]);
    let again = api.sim.confirm(&id).unwrap_err();
    assert!(matches!(again, SimError::BadTransition { .. }), "{again}");
}

#[tokio::test]
async fn mediation_approves_or_denies_and_denied_rows_vanish() {
    let api = Api::start().await;
    let approved = api.book_room(Status::MediatedTentative, FROM, TO);
    let denied = api.book_room(Status::MediatedTentative, FROM, TO);
    assert_eq!(
        status_of(&api).await,
        ["Mediated Tentative", "Mediated Tentative"]
    );
    assert!(rows(&api, "include_tentative=0").await.is_empty());
    api.sim.approve(&approved).unwrap();
    api.sim.deny(&denied).unwrap();
    assert_eq!(status_of(&api).await, ["Mediated Approved"]);
    assert!(
        api.ok(&format!("1.1/space/booking/{denied}"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn denied_rows_show_when_configured() {
    let config = SimConfig {
        show_denied: true,
        ..SimConfig::default()
    };
    let api = Api::start_with(config).await;
    let id = api.book_room(Status::MediatedTentative, FROM, TO);
    api.sim.deny(&id).unwrap();
    assert_eq!(status_of(&api).await, ["Mediated Denied"]);
}

#[tokio::test]
async fn cancellations_name_who_and_stamp_cancelled() {
    let api = Api::start().await;
    for (by, status) in [
        (CancelledBy::User, "Cancelled by User"),
        (CancelledBy::Admin, "Cancelled by Admin"),
        (CancelledBy::System, "Cancelled by System"),
    ] {
        let id = api.book_room(Status::Confirmed, FROM, TO);
        api.sim.cancel(&id, by).unwrap();
        let row = &api.ok(&format!("1.1/space/booking/{id}")).await[0];
        assert_eq!(row["status"], status);
        let stamp = row["cancelled"].as_str().expect("cancelled timestamp");
        // Stamped now, written in New York time like every other date-time.
        let stamp = chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        let local = chrono::Utc::now().with_timezone(&chrono_tz::America::New_York);
        assert_eq!(stamp.offset().to_string(), local.format("%:z").to_string());
        assert!((chrono::Utc::now() - stamp.to_utc()).num_seconds() < 60);
        assert!(api.sim.cancel(&id, by).is_err(), "already cancelled");
    }
    assert_eq!(
        rows(&api, "").await.len(),
        3,
        "cancelled rows are included by default"
    );
    assert!(rows(&api, "include_cancel=0").await.is_empty());
    let already = common::booking(
        Status::CancelledByAdmin,
        vec![common::row(api.room, None, FROM, TO)],
    );
    assert_eq!(
        api.sim.book(already),
        Err(SimError::BadInitialStatus("Cancelled by Admin"))
    );
}

#[tokio::test]
async fn edits_move_a_row_in_time_or_space_and_keep_its_id() {
    let api = Api::start().await;
    let id = api.book_room(Status::Confirmed, FROM, TO);
    let row_id = rows(&api, "").await[0]["id"].as_u64().unwrap();
    let later = RowEdit {
        from: Some(at("2026-07-01T16:00:00Z")),
        to: Some(at("2026-07-01T17:30:00Z")),
        ..RowEdit::default()
    };
    api.sim.edit_row(row_id, later).unwrap();
    let moved = RowEdit {
        eid: Some(api.hall),
        seat_id: Some(api.seat),
        ..RowEdit::default()
    };
    api.sim.edit_row(row_id, moved).unwrap();
    let row = &rows(&api, "").await[0];
    assert_eq!(row["id"], row_id);
    assert_eq!(row["bookId"], id.as_str());
    assert_eq!(row["fromDate"], "2026-07-01T12:00:00-04:00");
    assert_eq!(row["toDate"], "2026-07-01T13:30:00-04:00");
    assert_eq!(
        (row["eid"].as_u64(), row["seat_id"].as_u64()),
        (Some(api.hall.into()), Some(api.seat.into()))
    );
    let backwards = RowEdit {
        to: Some(at("2026-07-01T10:00:00Z")),
        ..RowEdit::default()
    };
    assert_eq!(
        api.sim.edit_row(row_id, backwards),
        Err(SimError::EmptyInterval)
    );
}

#[tokio::test]
async fn a_deleted_booking_vanishes_from_both_endpoints_without_a_status() {
    let api = Api::start().await;
    let deleted = api.book_room(Status::Confirmed, FROM, TO);
    let kept = api.book_room(Status::Confirmed, FROM, TO);
    api.sim.delete(&deleted).unwrap();
    let left = rows(&api, "").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["bookId"], kept.as_str());
    assert!(
        api.ok(&format!("1.1/space/booking/{deleted}"))
            .await
            .is_empty()
    );
    assert_eq!(
        api.sim.delete(&deleted),
        Err(SimError::NoBooking(deleted.clone()))
    );
}
