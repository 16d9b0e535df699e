//! The LibCal connector end to end (issue 7): bookings made, changed and cancelled in the
//! LibCal simulator reach booking-intake through the connector's polls, and from there the
//! RemoteLock simulator's lock and the patron's inbox, against real PostgreSQL, RabbitMQ and
//! SMTP. LibCal failing, answering nothing or losing a booking never takes a door away early.

use chrono::{DateTime, Days, Duration, Offset, TimeZone, Utc};
use libcal_connector::Application;
use libcal_sim::{CancelledBy, Fault, FaultKind, OverLimit, RowEdit, SimConfig, Status};
use lockbridge_e2e::{
    libcal::{
        Booked, CONNECTOR_TOKEN, LibcalSystem, MISSING_POLLS, Place, REQUEST_TIMEOUT, ZONE,
        library_time, logs::CapturedLogs, seen, space_id, until,
    },
    services,
    system::unique_patron,
};
use lockbridge_runtime::service::Service;
use reqwest::StatusCode;
use serde_json::Value;

/// 14:00–15:30 in the library, `days` from today.
fn afternoon(days: u64) -> (DateTime<Utc>, DateTime<Utc>) {
    (library_time(days, 14, 0), library_time(days, 15, 30))
}

fn pin(shown: &Value) -> &str {
    shown["pin"]["pin"].as_str().expect("an issued PIN")
}

/// Confirmed afternoon bookings of `place`, one on each of `days` from today.
fn book_days(lib: &LibcalSystem, place: Place, days: std::ops::Range<u64>) -> Vec<Booked> {
    days.map(|day| {
        let (from, to) = afternoon(day);
        lib.book(Status::Confirmed, place, from, to)
    })
    .collect()
}

/// A confirmed booking of the linked room, `days` from today, once its guest is on the lock.
async fn issued_booking(lib: &LibcalSystem, days: u64) -> (Booked, Value) {
    let (from, to) = afternoon(days);
    let booked = lib.book(Status::Confirmed, Place::LinkedRoom, from, to);
    let shown = lib.wait_for_pin(&booked.booking_id, "issued").await;
    lib.wait_for_guest(&booked, pin(&shown)).await;
    (booked, shown)
}

/// A booking of the unlinked room, so that the location's answer is never empty: a booking
/// that vanishes from a location's only answer is not counted missing (docs/libcal-connector.md).
async fn other_booking(lib: &LibcalSystem) {
    let (from, to) = afternoon(5);
    let booked = lib.book(Status::Confirmed, Place::UnlinkedRoom, from, to);
    lib.wait_for_no_pin(&booked.booking_id).await;
}

/// The booking reaches intake as LibCal has it, and the provisioner gives it no PIN.
async fn assert_flows_without_pin(lib: &LibcalSystem, booked: &Booked, place: Place) {
    let id = &booked.booking_id;
    lib.wait_for_no_pin(id).await;
    let shown = lib.booking(id).await.expect("in intake");
    lib.assert_as_in_libcal(booked, &shown, &lib.library.intake_id(place), "confirmed");
    assert_eq!(shown["pin"]["state"], "not_applicable");
    assert!(lib.system.guests_for(id).is_empty());
}

/// Nothing changed for the booking: still confirmed at its first revision, its PIN issued,
/// its guest on the lock, and no event but its confirmation.
async fn assert_untouched(lib: &LibcalSystem, booked: &Booked, first: &Value) {
    let shown = lib.booking(&booked.booking_id).await.expect("in intake");
    assert_eq!(shown["revision"], 1, "{shown}");
    assert_eq!(shown["status"], "confirmed");
    assert_eq!(shown["pin"], first["pin"]);
    lib.wait_for_guest(booked, pin(first)).await;
    assert_eq!(
        lib.booking_events(&booked.booking_id).await,
        ["booking.confirmed@1"]
    );
}

#[tokio::test]
async fn a_new_confirmed_booking_of_a_linked_room_gets_a_pin_on_its_lock_and_an_email() {
    let lib = LibcalSystem::start().await;
    let (booked, shown) = issued_booking(&lib, 2).await;
    let room = space_id(lib.library.linked_room);
    lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
    assert_eq!(shown["revision"], 1);
    assert_eq!(shown["time_zone"], ZONE.name());
    lib.wait_for_pin_email(&booked.patron, 1, pin(&shown)).await;
    lib.assert_quiet(MISSING_POLLS + 1).await;
    assert_eq!(lib.system.mailbox.to(&booked.patron).await.len(), 1);
}

/// A booking made as `status` waits in intake without a PIN over several polls, until `hook`
/// changes it in LibCal; then it is confirmed and gets its PIN.
async fn pin_only_once_libcal_confirms(status: Status, hook: fn(&LibcalSystem, &Booked)) {
    let lib = LibcalSystem::start().await;
    let (from, to) = afternoon(2);
    let booked = lib.book(status, Place::LinkedRoom, from, to);
    let id = &booked.booking_id;
    let waiting = lib.wait_for_tentative(id).await;
    lib.wait_polls(2).await;
    assert_eq!(lib.booking(id).await.expect("in intake"), waiting);
    assert!(
        lib.system.guests_for(id).is_empty(),
        "no guest while tentative"
    );
    assert!(lib.system.mailbox.to(&booked.patron).await.is_empty());

    hook(&lib, &booked);
    let shown = lib.wait_for_revision(id, 2, "issued").await;
    assert_eq!(lib.booking_events(id).await, ["booking.confirmed@2"]);
    let room = space_id(lib.library.linked_room);
    lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
    lib.wait_for_guest(&booked, pin(&shown)).await;
    lib.wait_for_pin_email(&booked.patron, 1, pin(&shown)).await;
}

#[tokio::test]
async fn a_tentative_booking_gets_its_pin_only_once_the_patron_confirms_it() {
    pin_only_once_libcal_confirms(Status::Tentative, LibcalSystem::confirm).await;
}

#[tokio::test]
async fn a_mediated_booking_gets_its_pin_only_once_staff_approve_it() {
    pin_only_once_libcal_confirms(Status::MediatedTentative, LibcalSystem::approve).await;
}

/// A mediated booking waits as tentative over several polls, then staff deny it: it is
/// cancelled in intake without ever having had a guest or an email. Answers when it was
/// denied and its cancellation as intake shows it.
async fn deny_a_mediated_booking(lib: &LibcalSystem) -> (Booked, DateTime<Utc>) {
    let (from, to) = afternoon(2);
    let booked = lib.book(Status::MediatedTentative, Place::LinkedRoom, from, to);
    let id = &booked.booking_id;
    let waiting = lib.wait_for_tentative(id).await;
    lib.wait_polls(MISSING_POLLS + 1).await;
    assert_eq!(lib.booking(id).await.expect("in intake"), waiting);

    let denied_at = Utc::now();
    lib.deny(&booked);
    let shown = lib
        .wait_for_booking(id, "cancelled", |b| b["status"] == "cancelled")
        .await;
    assert_eq!(shown["revision"], 2);
    // Intake says so (a tentative booking has had no event before).
    assert_eq!(lib.booking_events(id).await, ["booking.cancelled@2"]);
    assert!(lib.system.guests_for(id).is_empty(), "never had a guest");
    assert!(lib.system.mailbox.to(&booked.patron).await.is_empty());
    (booked, denied_at)
}

#[tokio::test]
async fn a_denied_mediated_booking_is_cancelled_once_missing_for_long_enough() {
    let lib = LibcalSystem::start().await;
    other_booking(&lib).await;
    // Denied rows vanish from LibCal's answers [T]: only their absence says so.
    let (booked, denied_at) = deny_a_mediated_booking(&lib).await;
    assert_cancelled_only_after_missing_polls(&lib, &booked, denied_at);
}

#[tokio::test]
async fn a_denied_mediated_booking_that_libcal_still_lists_is_cancelled_by_its_status() {
    let libcal = SimConfig {
        show_denied: true,
        ..SimConfig::default()
    };
    let lib = LibcalSystem::start_against(libcal, &[]).await;
    let (booked, _) = deny_a_mediated_booking(&lib).await;
    let lookups = lib.libcal.requests();
    assert!(
        !lookups.iter().any(|r| r.path.contains("/space/booking/")),
        "a listed booking is not looked up: {lookups:?}"
    );
    lib.assert_quiet(MISSING_POLLS + 1).await;
    assert_eq!(
        lib.booking(&booked.booking_id).await.unwrap()["revision"],
        2
    );
}

/// At least `missing_polls_before_cancel` polls looked the booking up by its bookId and
/// LibCal answered, between `since` and the cancellation's write to intake.
fn assert_cancelled_only_after_missing_polls(
    lib: &LibcalSystem,
    booked: &Booked,
    since: DateTime<Utc>,
) {
    let cancelled_at = *lib
        .gate
        .accepted_writes(&booked.booking_id)
        .last()
        .expect("the cancellation was written");
    let lookups = lib.answered_lookups_between(&booked.book_id, since, cancelled_at);
    assert!(
        lookups >= MISSING_POLLS,
        "cancelled after {lookups} polls without it, fewer than {MISSING_POLLS}"
    );
}

#[tokio::test]
async fn a_changed_time_moves_the_guest_s_window_and_keeps_its_pin() {
    let lib = LibcalSystem::start().await;
    let (mut booked, first) = issued_booking(&lib, 2).await;
    // A change while the first email waits would supersede it, and rightly so.
    lib.wait_for_pin_email(&booked.patron, 1, pin(&first)).await;

    let later = RowEdit {
        from: Some(booked.starts_at + Duration::hours(2)),
        to: Some(booked.ends_at + Duration::hours(3)),
        ..RowEdit::default()
    };
    lib.edit(&mut booked, later);
    let shown = lib.wait_for_revision(&booked.booking_id, 2, "issued").await;
    let room = space_id(lib.library.linked_room);
    lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
    lib.wait_for_guest(&booked, pin(&first)).await;
    lib.wait_for_pin_email(&booked.patron, 2, pin(&first)).await;
    assert_eq!(
        lib.booking_events(&booked.booking_id).await,
        ["booking.confirmed@1", "booking.changed@2"]
    );
}

#[tokio::test]
async fn a_booking_moved_to_a_room_without_a_lock_loses_the_door() {
    let lib = LibcalSystem::start().await;
    let (mut booked, _) = issued_booking(&lib, 2).await;
    lib.move_to(&mut booked, Place::UnlinkedRoom);
    let shown = lib
        .wait_for_revision(&booked.booking_id, 2, "revoked")
        .await;
    let room = lib.library.intake_id(Place::UnlinkedRoom);
    lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
    assert!(lib.live_guests(&booked.booking_id).is_empty());
}

#[tokio::test]
async fn a_booking_cancelled_by_the_user_an_admin_or_the_system_loses_its_guest() {
    let lib = LibcalSystem::start().await;
    let mut cancelled = Vec::new();
    for (days, by) in [
        (2, CancelledBy::User),
        (3, CancelledBy::Admin),
        (4, CancelledBy::System),
    ] {
        cancelled.push((issued_booking(&lib, days).await.0, by));
    }
    for (booked, by) in &cancelled {
        lib.cancel(booked, *by);
    }
    for (booked, by) in &cancelled {
        let id = &booked.booking_id;
        let shown = lib.wait_for_revision(id, 2, "revoked").await;
        assert_eq!(shown["status"], "cancelled", "{by:?}");
        let guests = lib.system.guests_for(id);
        assert_eq!(guests.len(), 1, "{by:?}: {guests:?}");
        assert!(lib.live_guests(id).is_empty(), "{by:?}: {guests:?}");
        assert_eq!(
            lib.booking_events(id).await,
            ["booking.confirmed@1", "booking.cancelled@2"]
        );
    }
}

#[tokio::test]
async fn a_libcal_outage_revokes_nothing_and_readyz_says_libcal_is_unreachable() {
    let lib = LibcalSystem::start().await;
    let (booked, first) = issued_booking(&lib, 2).await;
    lib.wait_for_readyz(StatusCode::OK).await;

    let server_errors = 8;
    lib.libcal
        .inject(Fault::new(FaultKind::Status { status: 503 }).times(server_errors));
    lib.wait_for_readyz(StatusCode::SERVICE_UNAVAILABLE).await;
    until("the 503s to be used up", || async {
        let answered = lib
            .libcal
            .requests()
            .iter()
            .filter(|r| r.status == 503)
            .count();
        seen(answered >= server_errors as usize, answered)
    })
    .await;
    lib.wait_for_readyz(StatusCode::OK).await;

    // Held past libcal.request_timeout.
    let held = Fault::delay(REQUEST_TIMEOUT + std::time::Duration::from_secs(1));
    lib.libcal
        .inject(Fault::new(held).on("/space/bookings").times(2));
    lib.wait_for_readyz(StatusCode::SERVICE_UNAVAILABLE).await;
    lib.wait_for_readyz(StatusCode::OK).await;
    lib.wait_polls(MISSING_POLLS + 1).await;
    assert_untouched(&lib, &booked, &first).await;
}

#[tokio::test]
async fn a_refused_token_is_renewed_within_the_poll_and_revokes_nothing() {
    let lib = LibcalSystem::start().await;
    let (booked, first) = issued_booking(&lib, 2).await;
    lib.libcal
        .inject(Fault::new(FaultKind::Unauthorized).on("/space/bookings"));
    let (from, to) = afternoon(3);
    let later = lib.book(Status::Confirmed, Place::LinkedRoom, from, to);
    lib.wait_for_pin(&later.booking_id, "issued").await;

    let log = lib.libcal.requests();
    let refused = log
        .iter()
        .position(|r| r.status == 401)
        .expect("LibCal refused the token once");
    let next: Vec<(&str, u16)> = log[refused + 1..refused + 3]
        .iter()
        .map(|r| (r.path.split('?').next().unwrap_or_default(), r.status))
        .collect();
    assert_eq!(
        next,
        [("/1.1/oauth/token", 200), ("/1.1/space/bookings", 200)],
        "a new token, and the same call again"
    );
    assert_untouched(&lib, &booked, &first).await;
}

#[tokio::test]
async fn an_empty_answer_revokes_nothing() {
    let lib = LibcalSystem::start().await;
    let (booked, first) = issued_booking(&lib, 2).await;
    let empty = MISSING_POLLS * 2;
    lib.libcal.inject(
        Fault::new(FaultKind::EmptyList)
            .on("/space/bookings")
            .times(empty as u32),
    );
    lib.wait_polls(empty + 1).await;
    assert_untouched(&lib, &booked, &first).await;
    let lookups = lib.libcal.requests();
    assert!(
        !lookups.iter().any(|r| r.path.contains("/space/booking/")),
        "an empty answer is not a reason to look bookings up: {lookups:?}"
    );
}

#[tokio::test]
async fn a_booking_gone_from_libcal_is_cancelled_only_after_the_missing_polls() {
    let lib = LibcalSystem::start().await;
    other_booking(&lib).await;
    let (booked, _) = issued_booking(&lib, 2).await;
    let deleted_at = Utc::now();
    lib.delete(&booked);
    // Failed polls and failed lookups in between count nothing.
    for path in ["/space/bookings", "/space/booking/"] {
        lib.libcal.inject(
            Fault::new(FaultKind::Status { status: 502 })
                .on(path)
                .times(2),
        );
    }
    let shown = lib
        .wait_for_revision(&booked.booking_id, 2, "revoked")
        .await;
    assert_eq!(shown["status"], "cancelled");
    assert_cancelled_only_after_missing_polls(&lib, &booked, deleted_at);
    assert!(lib.live_guests(&booked.booking_id).is_empty());
}

#[tokio::test]
async fn bookings_past_the_first_page_all_arrive_and_none_is_taken_for_missing() {
    let lib = LibcalSystem::start_with(&[("libcal.page_size", "2".to_owned())]).await;
    let bookings = book_days(&lib, Place::UnlinkedRoom, 2..7);
    for booked in &bookings {
        assert_flows_without_pin(&lib, booked, Place::UnlinkedRoom).await;
    }
    let log = lib.libcal.requests();
    assert!(
        log.iter().any(|r| r.path.contains("&page=3&limit=2&")),
        "five rows are three pages of two"
    );
    lib.assert_quiet(MISSING_POLLS + 1).await;
    for booked in &bookings {
        let shown = lib.booking(&booked.booking_id).await.expect("in intake");
        assert_eq!(
            (&shown["revision"], &shown["status"]),
            (&1.into(), &"confirmed".into())
        );
    }
}

#[tokio::test]
async fn a_libcal_serving_fewer_rows_than_asked_is_paged_through_all_the_same() {
    // Whether LibCal refuses a `limit` above its maximum or serves its maximum is unknown
    // (libcal-api.md §6, GWU once believed it is 100): here it serves two rows a page, while
    // the connector asks for 500.
    let libcal = SimConfig {
        over_limit: OverLimit::Clamp,
        max_limit: 2,
        ..SimConfig::default()
    };
    let lib = LibcalSystem::start_against(libcal, &[]).await;
    let bookings = book_days(&lib, Place::UnlinkedRoom, 2..7);
    for booked in &bookings {
        assert_flows_without_pin(&lib, booked, Place::UnlinkedRoom).await;
    }
    lib.assert_quiet(MISSING_POLLS + 1).await;
}

/// The instants after `after` and before `until` at which the library's UTC offset changes
/// (on the hour, in New York).
fn offset_changes(after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let offset = |at: DateTime<Utc>| ZONE.offset_from_utc_datetime(&at.naive_utc()).fix();
    let start = after
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    (1..)
        .map(|hours| start + Duration::hours(hours))
        .take_while(|&at| at < until)
        .filter(|&at| offset(at) != offset(at - Duration::hours(1)))
        .collect()
}

#[tokio::test]
async fn bookings_either_side_of_a_clock_change_keep_their_instants() {
    // The longest window the connector takes (libcal.lookahead_days at most 366) holds one
    // spring and one autumn change, or at least one of them.
    let lookahead = 366;
    let now = Utc::now();
    let changes = offset_changes(now + Days::new(2), now + Days::new(lookahead - 1));
    assert!(
        !changes.is_empty(),
        "New York changes its clocks twice a year"
    );
    let lib = LibcalSystem::start_with(&[("libcal.lookahead_days", lookahead.to_string())]).await;
    let room = space_id(lib.library.linked_room);
    for change in changes {
        let half_hours = |n: i64| change + Duration::minutes(n * 30);
        // Before the change, across it (01:30 to 03:30 in spring, 01:30 to 01:30 in autumn),
        // and after it.
        for (from, to) in [(-6, -4), (-1, 1), (4, 6)] {
            let booked = lib.book(
                Status::Confirmed,
                Place::LinkedRoom,
                half_hours(from),
                half_hours(to),
            );
            let shown = lib.wait_for_pin(&booked.booking_id, "issued").await;
            lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
            lib.wait_for_guest(&booked, pin(&shown)).await;
        }
    }
}

/// Each booking gets its PIN, one guest and one email, and nothing more happens to any of
/// them over several polls.
async fn each_issued_once(lib: &LibcalSystem, bookings: &[Booked]) {
    let mut issued = Vec::new();
    for booked in bookings {
        let id = &booked.booking_id;
        let shown = lib.wait_for_pin(id, "issued").await;
        lib.wait_for_pin_email(&booked.patron, 1, pin(&shown)).await;
        assert_eq!(lib.system.guests_for(id).len(), 1, "{id}: one guest");
        issued.push(shown);
    }
    lib.assert_quiet(MISSING_POLLS + 1).await;
    for (booked, shown) in bookings.iter().zip(&issued) {
        assert_untouched(lib, booked, shown).await;
    }
}

#[tokio::test]
async fn a_connector_stopped_while_sending_sends_each_booking_once_after_its_restart() {
    let mut lib = LibcalSystem::start().await;
    lib.gate.pass_only(2);
    let bookings = book_days(&lib, Place::LinkedRoom, 2..7);
    until("two bookings sent and the rest refused", || async {
        let writes: Vec<_> = bookings
            .iter()
            .flat_map(|b| lib.gate.writes(&b.booking_id))
            .collect();
        let accepted = writes.iter().filter(|w| w.status.is_success()).count();
        seen(accepted == 2 && writes.len() > 2, writes)
    })
    .await;
    lib.stop_connector().await;
    lib.gate.open();
    lib.start_connector().await;

    each_issued_once(&lib, &bookings).await;
    for booked in &bookings {
        let accepted = lib.gate.accepted_writes(&booked.booking_id);
        assert_eq!(accepted.len(), 1, "{} sent once", booked.booking_id);
    }
}

#[tokio::test]
async fn two_connectors_on_one_database_make_one_guest_and_one_email_per_booking() {
    let mut lib = LibcalSystem::start().await;
    lib.add_connector().await;
    let bookings = book_days(&lib, Place::LinkedRoom, 2..6);
    each_issued_once(&lib, &bookings).await;
}

#[tokio::test]
async fn seat_and_unlinked_room_bookings_flow_in_without_a_pin_or_an_email() {
    let lib = LibcalSystem::start().await;
    let (from, to) = afternoon(2);
    let patron = unique_patron();
    // One transaction: the room and a seat share a bookId, each row its own booking.
    let made = lib.book_rows(
        Status::Confirmed,
        &patron,
        &[(Place::LinkedRoom, from, to), (Place::Seat(1), from, to)],
    );
    let room = Booked::of(&made, 0, &patron, from, to);
    let seat = Booked::of(&made, 1, &patron, from, to);
    let unlinked = lib.book(Status::Confirmed, Place::UnlinkedRoom, from, to);

    let issued = lib.wait_for_pin(&room.booking_id, "issued").await;
    assert_flows_without_pin(&lib, &seat, Place::Seat(1)).await;
    assert_flows_without_pin(&lib, &unlinked, Place::UnlinkedRoom).await;
    lib.wait_for_pin_email(&patron, 1, pin(&issued)).await;
    assert!(lib.system.mailbox.to(&unlinked.patron).await.is_empty());
}

#[tokio::test]
async fn bookings_made_while_intake_is_down_arrive_once_it_is_back() {
    let lib = LibcalSystem::start().await;
    lib.gate.close();
    let (from, to) = afternoon(2);
    let booked = lib.book(Status::Confirmed, Place::LinkedRoom, from, to);
    let id = &booked.booking_id;
    until("the sender to try twice", || async {
        let writes = lib.gate.writes(id);
        seen(writes.len() >= 2, writes)
    })
    .await;
    assert_eq!(lib.booking(id).await, None);

    lib.gate.open();
    let shown = lib.wait_for_pin(id, "issued").await;
    lib.wait_for_guest(&booked, pin(&shown)).await;
    lib.wait_for_pin_email(&booked.patron, 1, pin(&shown)).await;
    assert_eq!(lib.gate.accepted_writes(id).len(), 1);
}

#[tokio::test]
async fn once_everything_settled_further_polls_write_nothing_to_intake() {
    let lib = LibcalSystem::start().await;
    let (confirmed, _) = issued_booking(&lib, 2).await;
    let (mut moved, _) = issued_booking(&lib, 3).await;
    let (from, to) = afternoon(4);
    let tentative = lib.book(Status::Tentative, Place::LinkedRoom, from, to);
    let seat = lib.book(Status::Confirmed, Place::Seat(0), from, to);
    lib.cancel(&confirmed, CancelledBy::User);
    lib.move_to(&mut moved, Place::UnlinkedRoom);
    lib.wait_for_revision(&confirmed.booking_id, 2, "revoked")
        .await;
    lib.wait_for_revision(&moved.booking_id, 2, "revoked").await;
    lib.wait_for_tentative(&tentative.booking_id).await;
    lib.wait_for_no_pin(&seat.booking_id).await;
    lib.assert_quiet(MISSING_POLLS + 2).await;
}

#[tokio::test]
async fn a_booking_moved_beyond_the_window_is_updated_and_not_taken_for_missing() {
    let lib = LibcalSystem::start().await;
    other_booking(&lib).await;
    let (mut booked, first) = issued_booking(&lib, 2).await;
    // libcal.lookahead_days is 30: LibCal still has it, looked up by its bookId.
    let (from, to) = afternoon(45);
    let beyond = RowEdit {
        from: Some(from),
        to: Some(to),
        ..RowEdit::default()
    };
    lib.edit(&mut booked, beyond);
    let shown = lib.wait_for_revision(&booked.booking_id, 2, "issued").await;
    let room = space_id(lib.library.linked_room);
    lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
    lib.wait_for_guest(&booked, pin(&first)).await;
    lib.assert_quiet(MISSING_POLLS + 1).await;
}

#[tokio::test]
async fn a_booking_cancelled_before_the_connector_first_saw_it_is_never_sent() {
    let mut lib = LibcalSystem::start().await;
    lib.stop_connector().await;
    let (from, to) = afternoon(2);
    let booked = lib.book(Status::Confirmed, Place::LinkedRoom, from, to);
    lib.cancel(&booked, CancelledBy::User);
    let witness = lib.book(Status::Confirmed, Place::UnlinkedRoom, from, to);
    lib.start_connector().await;
    lib.wait_for_no_pin(&witness.booking_id).await;
    lib.assert_quiet(MISSING_POLLS + 1).await;
    assert_eq!(lib.booking(&booked.booking_id).await, None);
    assert!(lib.gate.writes(&booked.booking_id).is_empty());
}

#[tokio::test]
async fn a_room_added_in_libcal_later_reaches_intake_with_its_first_booking() {
    let lib = LibcalSystem::start().await;
    let eid = lib.add_space("Study Room 103", true);
    let (from, to) = afternoon(2);
    let room = Place::Other { eid, seat: None };
    let booked = lib.book(Status::Confirmed, room, from, to);
    assert_flows_without_pin(&lib, &booked, room).await;
    assert_eq!(
        lib.catalogue_entry(&space_id(eid)).await,
        Some(("Study Room 103".into(), "bookable_as_whole".into()))
    );
}

#[tokio::test]
async fn a_room_intake_lost_is_sent_again_once_intake_refuses_a_booking_of_it() {
    let lib = LibcalSystem::start().await;
    // As if intake's database were restored from a backup older than the room.
    let room = lib.library.intake_id(Place::UnlinkedRoom);
    sqlx::query("DELETE FROM spaces WHERE space_id = $1")
        .bind(&room)
        .execute(&lib.system.db.pool)
        .await
        .expect("the room is gone from intake");
    let (from, to) = afternoon(2);
    let booked = lib.book(Status::Confirmed, Place::UnlinkedRoom, from, to);
    assert_flows_without_pin(&lib, &booked, Place::UnlinkedRoom).await;
    assert_eq!(
        lib.catalogue_entry(&room).await,
        Some(("Study Room 102".into(), "bookable_as_whole".into()))
    );
}

#[tokio::test]
async fn without_libcal_s_seats_module_a_seat_is_known_from_its_booking() {
    let lib = LibcalSystem::start().await;
    let eid = lib.add_space("Periodicals Hall", false);
    let seat = lib.libcal.add_seat(eid, "Seat P7").expect("a seat");
    // An instance without the Seats module has no seats endpoint [T].
    lib.libcal.inject(
        Fault::new(FaultKind::Status { status: 404 })
            .on("/space/seats/")
            .times(1000),
    );
    let (from, to) = afternoon(2);
    let place = Place::Other {
        eid,
        seat: Some(seat),
    };
    let booked = lib.book(Status::Confirmed, place, from, to);
    assert_flows_without_pin(&lib, &booked, place).await;
    assert_eq!(
        lib.catalogue_entry(&space_id(eid)).await,
        Some(("Periodicals Hall".into(), "container".into()))
    );
    assert_eq!(
        lib.catalogue_entry(&lib.library.intake_id(place)).await,
        Some(("Seat P7".into(), "seat".into()))
    );
}

#[tokio::test]
async fn a_booking_intake_refuses_is_sent_again_only_when_libcal_changes_it() {
    let lib = LibcalSystem::start().await;
    let (from, to) = afternoon(2);
    // LibCal takes an address intake does not: no dot in the domain.
    let made = lib.book_rows(
        Status::Confirmed,
        "ada@library",
        &[(Place::LinkedRoom, from, to)],
    );
    let mut booked = Booked::of(&made, 0, "ada@library", from, to);
    let id = booked.booking_id.clone();
    let refused = |count: usize| {
        let lib = &lib;
        let id = &id;
        async move {
            until(&format!("{count} refusals of {id}"), || async move {
                let writes = lib.gate.writes(id);
                let refused = writes.iter().filter(|w| w.status.is_client_error()).count();
                seen(refused == count && writes.len() == count, writes)
            })
            .await;
        }
    };
    refused(1).await;
    lib.assert_quiet(MISSING_POLLS + 1).await;

    let later = RowEdit {
        from: Some(from + Duration::hours(1)),
        to: Some(to + Duration::hours(1)),
        ..RowEdit::default()
    };
    lib.edit(&mut booked, later);
    refused(2).await;
    lib.assert_quiet(MISSING_POLLS + 1).await;
    assert_eq!(lib.booking(&id).await, None);
    assert!(lib.system.guests_for(&id).is_empty());
}

#[tokio::test]
async fn a_connector_whose_state_is_older_than_intake_s_catches_up_without_a_second_guest() {
    let mut lib = LibcalSystem::start().await;
    let (mut booked, first) = issued_booking(&lib, 2).await;
    let later = RowEdit {
        from: Some(booked.starts_at + Duration::hours(1)),
        to: Some(booked.ends_at + Duration::hours(1)),
        ..RowEdit::default()
    };
    lib.edit(&mut booked, later);
    lib.wait_for_revision(&booked.booking_id, 2, "issued").await;
    lib.wait_for_guest(&booked, pin(&first)).await;

    // As if restored from a backup taken before the booking was made.
    lib.stop_connector().await;
    sqlx::query("DELETE FROM libcal_bookings")
        .execute(&lib.system.db.pool)
        .await
        .expect("the connector's state is gone");
    lib.start_connector().await;
    // Its revision 1 is refused as stale; what LibCal says now goes out above intake's 2.
    let shown = lib.wait_for_revision(&booked.booking_id, 3, "issued").await;
    let room = space_id(lib.library.linked_room);
    lib.assert_as_in_libcal(&booked, &shown, &room, "confirmed");
    lib.wait_for_guest(&booked, pin(&first)).await;
    lib.assert_quiet(MISSING_POLLS + 1).await;

    lib.cancel(&booked, CancelledBy::Admin);
    lib.wait_for_revision(&booked.booking_id, 4, "revoked")
        .await;
    assert_eq!(
        lib.booking_events(&booked.booking_id).await,
        [
            "booking.confirmed@1",
            "booking.changed@2",
            "booking.cancelled@4"
        ]
    );
    assert_eq!(lib.system.guests_for(&booked.booking_id).len(), 1);
}

#[tokio::test]
async fn a_wrong_client_secret_keeps_the_connector_unready_and_sends_nothing() {
    let logs = CapturedLogs::install();
    let mut lib = LibcalSystem::start().await;
    let secret = lib.libcal.config().client_secret.clone();
    lib.restart_connector_with("libcal.client_secret", "not-the-secret")
        .await;
    let (from, to) = afternoon(2);
    let booked = lib.book(Status::Confirmed, Place::LinkedRoom, from, to);
    until("LibCal to refuse the credentials three times", || async {
        let log = lib.libcal.requests();
        let refused = log
            .iter()
            .filter(|r| r.path.contains("/oauth/token") && r.status == 400);
        let count = refused.count();
        seen(count >= 3, count)
    })
    .await;
    assert_eq!(lib.readyz().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(lib.booking(&booked.booking_id).await, None);
    let text = logs.text();
    assert!(
        text.contains(
            "LibCal refused the client credentials (libcal.client_id, libcal.client_secret)"
        ),
        "the log says which settings are wrong"
    );
    assert!(
        !text.contains("not-the-secret"),
        "the secret itself is not logged"
    );

    lib.restart_connector_with("libcal.client_secret", &secret)
        .await;
    lib.wait_for_pin(&booked.booking_id, "issued").await;
    lib.wait_for_readyz(StatusCode::OK).await;
}

#[tokio::test]
async fn a_wrong_intake_token_stores_nothing_and_the_log_names_the_setting() {
    let logs = CapturedLogs::install();
    let mut lib = LibcalSystem::start().await;
    lib.restart_connector_with("libcal.intake_token", "not-the-token")
        .await;
    let (from, to) = afternoon(2);
    let booked = lib.book(Status::Confirmed, Place::LinkedRoom, from, to);
    let id = &booked.booking_id;
    until("intake to refuse the token", || async {
        let writes = lib.gate.writes(id);
        let refused = writes.iter().any(|w| w.status == StatusCode::UNAUTHORIZED);
        seen(refused, writes)
    })
    .await;
    assert_eq!(lib.booking(id).await, None);
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("refused libcal.intake_token") && l.contains("WARN")),
        "the log says which setting is wrong"
    );
    assert!(
        !text.contains("not-the-token"),
        "the token itself is not logged"
    );

    lib.restart_connector_with("libcal.intake_token", CONNECTOR_TOKEN)
        .await;
    lib.wait_for_pin(id, "issued").await;
}

#[tokio::test]
async fn each_poll_logs_its_counts_and_no_secret_or_pin_is_logged() {
    let logs = CapturedLogs::install();
    let lib = LibcalSystem::start().await;
    let (booked, shown) = issued_booking(&lib, 2).await;
    lib.cancel(&booked, CancelledBy::User);
    lib.wait_for_revision(&booked.booking_id, 2, "revoked")
        .await;
    lib.wait_polls(1).await;

    let text = logs.text();
    let polls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("LibCal poll "))
        .collect();
    for counts in ["new=1 changed=0 cancelled=0", "new=0 changed=0 cancelled=1"] {
        assert!(
            polls.iter().any(|line| line.contains(counts)),
            "a poll logged {counts}: {polls:#?}"
        );
    }
    assert!(polls.iter().all(|line| line.contains("unchanged=")
        && line.contains("missing=")
        && line.contains("elapsed_ms=")));
    let secret = lib.libcal.config().client_secret.as_str();
    assert!(!text.contains(secret) && !text.contains(CONNECTOR_TOKEN));
    // Six digits may well occur inside an id or a timestamp: only a PIN standing alone counts.
    let pin = pin(&shown);
    let alone = text.match_indices(pin).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + pin.len()..].chars().next();
        [before, after]
            .iter()
            .all(|c| !c.is_some_and(|c| c.is_ascii_alphanumeric()))
    });
    assert!(!alone, "the PIN was logged");
}

#[tokio::test]
async fn a_missing_setting_stops_the_connector_with_one_sentence_naming_it() {
    let settings = [
        ("libcal.client_secret", "a-client-secret"),
        ("libcal.intake_token", "an-intake-token"),
        ("libcal.location_ids", "8801"),
        ("libcal.time_zone", "America/New_York"),
        // Nothing listens there: the settings are checked before the database.
        ("database.url", "postgres://postgres@127.0.0.1:1/none"),
    ];
    for (missing, says) in [
        ("libcal.client_secret", "libcal.client_secret is not set; "),
        ("libcal.intake_token", "libcal.intake_token is not set; "),
        ("libcal.location_ids", "libcal.location_ids is empty; "),
    ] {
        let rest: Vec<(&str, String)> = settings
            .iter()
            .filter(|(key, _)| *key != missing)
            .map(|&(key, value)| (key, value.to_owned()))
            .collect();
        let error = match Application::build(services::settings(&rest)).await {
            Ok(_) => panic!("the connector started without {missing}"),
            Err(error) => error.to_string(),
        };
        assert!(error.starts_with(says), "{missing}: {error}");
        assert!(!error.contains('\n'), "one sentence: {error}");
        assert!(!error.contains("a-client-secret") && !error.contains("an-intake-token"));
    }
}
