//! `/space/bookings` and `/space/booking/{bookId}`: row shape, window, filters, paging, limits,
//! DST offsets.

mod common;

use common::{Api, booking, row};
use libcal_sim::{OverLimit, SimConfig, Status};
use serde_json::json;

#[tokio::test]
async fn rows_carry_local_offsets_and_omit_optional_keys() {
    let api = Api::start().await;
    let book_id = api.book_room(
        Status::Confirmed,
        "2026-07-01T14:00:00Z",
        "2026-07-01T15:00:00Z",
    );
    let rows = api.ok("1.1/space/bookings?date=2026-07-01").await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["bookId"], book_id.as_str());
    assert!(book_id.starts_with("cs_") && book_id.len() == 11);
    assert_eq!(r["fromDate"], "2026-07-01T10:00:00-04:00");
    assert_eq!(r["toDate"], "2026-07-01T11:00:00-04:00");
    assert_eq!(
        (r["eid"].clone(), r["cid"].clone(), r["lid"].clone()),
        (json!(api.room), json!(api.cid), json!(api.lid))
    );
    assert_eq!(r["status"], "Confirmed");
    assert_eq!(r["item_name"], "Room 1");
    for key in ["seat_id", "seat_name", "cancelled"] {
        assert!(r.get(key).is_none(), "{key} must be absent, not null");
    }
    assert_eq!(
        api.ok(&format!("api/1.1/space/booking/{book_id}")).await,
        rows
    );
}

#[tokio::test]
async fn one_transaction_shares_the_book_id_with_distinct_row_ids() {
    let api = Api::start().await;
    let rows = vec![
        row(
            api.room,
            None,
            "2026-07-01T14:00:00Z",
            "2026-07-01T15:00:00Z",
        ),
        row(
            api.hall,
            Some(api.seat),
            "2026-07-01T14:00:00Z",
            "2026-07-01T15:00:00Z",
        ),
    ];
    let made = api.sim.book(booking(Status::Confirmed, rows)).unwrap();
    let listed = api.ok(&format!("1.1/space/booking/{}", made.book_id)).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], made.row_ids[0]);
    assert_eq!(listed[1]["id"], made.row_ids[1]);
    assert_eq!(listed[1]["seat_id"], api.seat);
    assert_eq!(listed[1]["seat_name"], "Seat 1");
    let seat_only = api
        .ok(&format!(
            "1.1/space/bookings?date=2026-07-01&seat_id={}",
            api.seat
        ))
        .await;
    assert_eq!(seat_only.len(), 1);
    // A per-seat space needs a seat; a whole room has none.
    assert!(
        api.sim
            .book(booking(
                Status::Confirmed,
                vec![row(
                    api.hall,
                    None,
                    "2026-07-01T14:00:00Z",
                    "2026-07-01T15:00:00Z"
                )]
            ))
            .is_err()
    );
}

#[tokio::test]
async fn the_window_counts_local_days_from_date_for_days() {
    let api = Api::start().await;
    // 23:30 in New York on 1 July is already 2 July in UTC: it belongs to 1 July.
    api.book_room(
        Status::Confirmed,
        "2026-07-02T03:30:00Z",
        "2026-07-02T04:00:00Z",
    );
    api.book_room(
        Status::Confirmed,
        "2026-07-03T14:00:00Z",
        "2026-07-03T15:00:00Z",
    );
    assert_eq!(api.ok("1.1/space/bookings?date=2026-07-01").await.len(), 1);
    assert_eq!(api.ok("1.1/space/bookings?date=2026-07-02").await.len(), 0);
    assert_eq!(
        api.ok("1.1/space/bookings?date=2026-7-1&days=2")
            .await
            .len(),
        2
    );
    let by_category = format!("1.1/space/bookings?date=2026-07-01&days=2&cid={}", api.cid);
    assert_eq!(api.ok(&by_category).await.len(), 2);
    assert_eq!(
        api.ok("1.1/space/bookings?date=2026-07-01&days=2&lid=1")
            .await
            .len(),
        0
    );
    assert_eq!(
        api.ok("1.1/space/bookings?date=2026-07-01&days=2&email=ADA@example.edu")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_dst_change_inside_the_window_changes_the_offset() {
    let api = Api::start().await;
    // New York leaves daylight time on 1 November 2026.
    api.book_room(
        Status::Confirmed,
        "2026-10-31T14:00:00Z",
        "2026-10-31T15:00:00Z",
    );
    api.book_room(
        Status::Confirmed,
        "2026-11-02T15:00:00Z",
        "2026-11-02T16:00:00Z",
    );
    let rows = api.ok("1.1/space/bookings?date=2026-10-31&days=2").await;
    assert_eq!(rows[0]["fromDate"], "2026-10-31T10:00:00-04:00");
    assert_eq!(rows[1]["fromDate"], "2026-11-02T10:00:00-05:00");
}

#[tokio::test]
async fn pages_slice_by_limit_until_a_short_page() {
    let api = Api::start().await;
    for hour in 10..15 {
        let from = format!("2026-07-01T{hour}:00:00Z");
        let to = format!("2026-07-01T{hour}:30:00Z");
        api.book_room(Status::Confirmed, &from, &to);
    }
    let page = |n| format!("1.1/space/bookings?date=2026-07-01&limit=2&page={n}");
    let first = api.ok(&page(1)).await;
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["fromDate"], "2026-07-01T06:00:00-04:00");
    assert_eq!(api.ok(&page(3)).await.len(), 1);
    assert_eq!(api.ok(&page(4)).await.len(), 0);
    // Default limit is 20.
    assert_eq!(api.ok("1.1/space/bookings?date=2026-07-01").await.len(), 5);
}

#[tokio::test]
async fn out_of_range_parameters_are_refused() {
    let api = Api::start().await;
    for (query, message) in [
        ("days=366", "days must be between 0 and 365"),
        ("limit=501", "limit must be between 1 and 500"),
        ("limit=0", "limit must be between 1 and 500"),
        ("page=0", "page starts at 1"),
        ("date=07/01/2026", "date \"07/01/2026\" is not YYYY-MM-DD"),
        ("include_cancel=yes", "include_cancel \"yes\" is not 0 or 1"),
        ("eid=1,x", "eid \"x\" is not an id"),
    ] {
        let (status, body) = api.get(&format!("1.1/space/bookings?{query}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(message)),
            "{query}"
        );
    }
    assert_eq!(
        api.get("1.1/space/bookings?days=365&limit=500").await.0,
        200
    );
}

#[tokio::test]
async fn a_clamping_simulator_serves_the_maximum_instead() {
    let config = SimConfig {
        max_limit: 2,
        over_limit: OverLimit::Clamp,
        ..SimConfig::default()
    };
    let api = Api::start_with(config).await;
    for hour in 10..13 {
        api.book_room(
            Status::Confirmed,
            &format!("2026-07-01T{hour}:00:00Z"),
            &format!("2026-07-01T{hour}:30:00Z"),
        );
    }
    assert_eq!(
        api.ok("1.1/space/bookings?date=2026-07-01&limit=50")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn remote_bookings_need_include_remote() {
    let api = Api::start().await;
    let rows = vec![row(
        api.room,
        None,
        "2026-07-01T14:00:00Z",
        "2026-07-01T15:00:00Z",
    )];
    let synced = libcal_sim::NewBooking {
        remote: true,
        ..booking(Status::Confirmed, rows)
    };
    let made = api.sim.book(synced).unwrap();
    assert!(
        api.ok("1.1/space/bookings?date=2026-07-01")
            .await
            .is_empty()
    );
    let all = api
        .ok("1.1/space/bookings?date=2026-07-01&include_remote=1")
        .await;
    assert_eq!(all[0]["bookId"], made.book_id.as_str());
}

#[tokio::test]
async fn a_past_date_is_honoured_or_read_as_today() {
    let ny = chrono_tz::America::New_York;
    let today = chrono::Utc::now().with_timezone(&ny).date_naive();
    let yesterday = today - chrono::Days::new(1);
    let noon = |day: chrono::NaiveDate| {
        day.and_hms_opt(12, 0, 0)
            .unwrap()
            .and_local_timezone(ny)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let ignoring = SimConfig {
        ignore_past_dates: true,
        ..SimConfig::default()
    };
    for (config, expected) in [(SimConfig::default(), 2), (ignoring, 1)] {
        let api = Api::start_with(config).await;
        for day in [yesterday, today] {
            let from = noon(day);
            let to = from + chrono::Duration::hours(1);
            api.book_room(Status::Confirmed, &from.to_rfc3339(), &to.to_rfc3339());
        }
        let rows = api
            .ok(&format!("1.1/space/bookings?date={yesterday}&days=1"))
            .await;
        assert_eq!(rows.len(), expected);
    }
}
