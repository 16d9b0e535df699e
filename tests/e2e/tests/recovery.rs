//! Nothing is lost when the broker drops every connection, or when a service is stopped
//! while work is in flight.

use std::time::Duration;

use lockbridge_e2e::system::{TestSystem, booking, unique_patron};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn services_reconnect_after_the_broker_drops_their_connections() {
    let system = TestSystem::start().await;
    system.ready_with_link().await;
    let closed = system
        .broker
        .close_connections(4, Duration::from_secs(90))
        .await;
    assert!(
        closed >= 4,
        "every service had a connection to drop ({closed})"
    );

    let patron = unique_patron();
    let body = booking(
        "confirmed",
        "2027-02-02T10:00:00-05:00",
        "2027-02-02T11:00:00-05:00",
        &patron,
    );
    let (status, _) = system.put("/v1/bookings/rec-1", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    system.wait_for_pin("rec-1", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    assert_eq!(system.guests_for("rec-1").len(), 1);
}

#[tokio::test]
async fn a_booking_accepted_while_the_provisioner_restarts_is_still_provisioned() {
    let mut system = TestSystem::start().await;
    system.ready_with_link().await;
    let patron = unique_patron();
    let body = booking(
        "confirmed",
        "2027-02-03T10:00:00-05:00",
        "2027-02-03T11:00:00-05:00",
        &patron,
    );
    system.put("/v1/bookings/rec-2", &body).await;
    // Stopped as SIGTERM would stop it, at whatever point it had reached, then started again.
    system.restart_provisioner().await;
    system.wait_for_pin("rec-2", "issued", WAIT).await;
    system.mailbox.wait_for(&patron, 1, WAIT).await;
    assert_eq!(system.guests_for("rec-2").len(), 1);
}
