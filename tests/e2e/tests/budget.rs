//! One RemoteLock budget for the account, shared by every process (issue 6): a backlog spends
//! nearly all of each window and never meets a 429, and a booking whose PIN must work soon
//! goes through the share held back for it while the backlog waits for the next window.

use std::time::Duration;

use chrono::Utc;
use lockbridge_e2e::system::{TestSystem, booking, pin_state_is, unique_patron};
use remotelock_sim::{Method, SimConfig};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(120);

/// PUTs `count` confirmed bookings next year (routine work: far outside `urgent_within`).
async fn backlog(system: &TestSystem, prefix: &str, count: usize) -> Vec<(String, String)> {
    let patrons: Vec<(String, String)> = (0..count)
        .map(|i| (format!("{prefix}-{i}"), unique_patron()))
        .collect();
    let intake = system.intake_api();
    for (i, (booking_id, patron)) in patrons.iter().enumerate() {
        let day = 1 + i % 28;
        let body = booking(
            "confirmed",
            &format!("2027-03-{day:02}T10:00:00-05:00"),
            &format!("2027-03-{day:02}T11:00:00-05:00"),
            patron,
        );
        let (status, body) = intake
            .put(&format!("/v1/bookings/{booking_id}"), &body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    patrons
}

fn no_429s(system: &TestSystem) {
    let refused: Vec<_> = system
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.status == Some(429))
        .collect();
    assert!(refused.is_empty(), "rate limited: {refused:?}");
}

#[tokio::test]
async fn two_provisioners_spend_nearly_every_window_of_a_backlog_and_meet_no_429() {
    // 60 requests per 10 s window: a reserve of 1, an urgent share of 6.
    let sim = SimConfig {
        rate_limit_per_minute: 60,
        rate_limit_window: Duration::from_secs(10),
        ..SimConfig::default()
    };
    let mut system = TestSystem::start_with(sim, &[]).await;
    system.ready_with_link().await;
    system.add_worker_processes().await;

    // Two requests a booking: more than two windows' worth.
    const BOOKINGS: usize = 60;
    let patrons = backlog(&system, "backlog", BOOKINGS).await;
    for (booking_id, patron) in &patrons {
        system.wait_for_pin(booking_id, "issued", WAIT).await;
        system.mailbox.wait_for(patron, 1, WAIT).await;
    }
    // The backlog's last request, not the last email: on a loaded machine the emails may go
    // out after the window of that request has ended, which does not make it a full one.
    let done = system
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/access_persons"))
        .map(|r| r.at.timestamp())
        .max()
        .expect("the backlog made requests");

    no_429s(&system);
    let windows = system.sim.rate_limit_windows();
    // Every window that ended while the backlog lasted; the one it ended in is not full.
    let full: Vec<_> = windows.iter().filter(|w| w.resets_at < done).collect();
    assert!(
        full.len() >= 2,
        "the backlog outlasted two windows: {windows:?}"
    );
    for window in full {
        assert!(
            window.admitted * 100 >= window.limit * 95,
            "at least 95 % of each full window spent: {windows:?}"
        );
    }
    // The minimum per booking: its guest and its grant.
    let requests = system.sim.requests();
    let count = |method: Method, suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with("/access_persons"))
            .filter(|r| r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(count(Method::POST, "/access_persons"), BOOKINGS);
    assert_eq!(count(Method::POST, "/accesses"), BOOKINGS);
    assert_eq!(count(Method::PUT, ""), 0, "no guest was updated");
    // The lock is read once by the admin when linked, then once per provisioner process for
    // its zone, however many of its jobs start at once.
    let lookups = requests
        .iter()
        .filter(|r| r.method == Method::GET && r.path.starts_with("/devices/"))
        .count();
    assert!(lookups <= 3, "{lookups} reads of the one lock");
}

#[tokio::test]
async fn a_booking_that_starts_soon_gets_its_pin_while_a_backlog_waits_for_the_next_window() {
    // 40 requests a minute: a reserve of 1 and an urgent share of 4, which routine work may
    // only spend in the window's last seconds.
    let sim = SimConfig {
        rate_limit_per_minute: 40,
        ..SimConfig::default()
    };
    let system = TestSystem::start_with(sim, &[]).await;
    system.ready_with_link().await;
    // Three windows' worth of routine work.
    let patrons = backlog(&system, "later", 40).await;
    // The backlog has spent its share: its jobs are put back until the window's end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs
             WHERE queue = 'provision' AND state = 'queued' AND run_at > now() + interval '10 s'",
        )
        .fetch_one(&system.db.pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog never ran out of budget"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let patron = unique_patron();
    let starts = Utc::now() + chrono::Duration::minutes(30);
    let ends = starts + chrono::Duration::hours(1);
    let (status, body) = system
        .put(
            "/v1/bookings/soon",
            &booking(
                "confirmed",
                &starts.to_rfc3339(),
                &ends.to_rfc3339(),
                &patron,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let issued = system
        .wait_for_pin("soon", "issued", Duration::from_secs(30))
        .await;
    let emails = system
        .mailbox
        .wait_for(&patron, 1, Duration::from_secs(30))
        .await;
    assert!(
        emails[0]
            .text
            .contains(issued["pin"]["pin"].as_str().unwrap())
    );

    let windows = system.sim.rate_limit_windows();
    assert_eq!(
        windows.len(),
        1,
        "served within the spent window: {windows:?}"
    );
    let mut waiting = 0;
    for (booking_id, _) in &patrons {
        if !pin_state_is(
            &system.get_booking(booking_id).await["pin"]["state"],
            "issued",
        ) {
            waiting += 1;
        }
    }
    assert!(waiting > 0, "the backlog waits for the next window");
    no_429s(&system);
}
