//! Several processes of each worker service against one database and broker (issue 6): a
//! burst of bookings ends with one guest and one email per booking, however the work was
//! shared out.

use std::time::Duration;

use lockbridge_e2e::system::{TestSystem, booking, unique_patron};
use remotelock_sim::SimConfig;
use reqwest::StatusCode;

const BOOKINGS: usize = 40;
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn two_provisioners_and_two_notifiers_make_one_guest_and_one_email_per_booking() {
    let sim = SimConfig {
        rate_limit_per_minute: 100_000,
        ..SimConfig::default()
    };
    let mut system = TestSystem::start_with(sim, &[]).await;
    let lock = system.ready_with_link().await;
    system.add_worker_processes().await;

    let patrons: Vec<(String, String)> = (0..BOOKINGS)
        .map(|i| (format!("burst-{i}"), unique_patron()))
        .collect();
    let intake = system.intake_api();
    let puts = patrons.iter().enumerate().map(|(i, (booking_id, patron))| {
        let body = booking(
            "confirmed",
            &format!("2027-02-{:02}T10:00:00-05:00", 1 + i % 28),
            &format!("2027-02-{:02}T11:00:00-05:00", 1 + i % 28),
            patron,
        );
        let intake = &intake;
        async move {
            intake
                .put(&format!("/v1/bookings/{booking_id}"), &body)
                .await
        }
    });
    for (status, body) in futures_util::future::join_all(puts).await {
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    for (booking_id, patron) in &patrons {
        let issued = system.wait_for_pin(booking_id, "issued", WAIT).await;
        let pin = issued["pin"]["pin"].as_str().unwrap();
        let emails = system.mailbox.wait_for(patron, 1, WAIT).await;
        assert!(emails[0].text.contains(pin), "{booking_id}");
        let guests = system.guests_for(booking_id);
        assert_eq!(guests.len(), 1, "{booking_id}: {guests:?}");
        assert_eq!(guests[0].pin.as_deref(), Some(pin));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (booking_id, patron) in &patrons {
        assert_eq!(system.guests_for(booking_id).len(), 1, "{booking_id}");
        assert_eq!(system.mailbox.to(patron).await.len(), 1, "{booking_id}");
    }
    let live = system.sim.live_guests_on_lock(&lock);
    let pins: std::collections::HashSet<_> = live.iter().filter_map(|g| g.pin.clone()).collect();
    assert_eq!(
        pins.len(),
        BOOKINGS,
        "no two guests share a PIN on the lock"
    );
}
