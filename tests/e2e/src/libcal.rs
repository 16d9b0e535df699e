//! The LibCal connector against the whole system: a [`TestSystem`], the LibCal simulator on a
//! free port with a small library, and the connector in-process polling it every
//! [`POLL_INTERVAL`] and writing to booking-intake through an [`IntakeGate`] with its own
//! source token. Tests change bookings through the simulator's hooks, count polls in its
//! request log, and read the outcome back from intake, the RemoteLock simulator and MailDev.

pub mod gate;
pub use crate::logs;

use std::{future::Future, time::Duration};

use chrono::{DateTime, Days, NaiveTime, Utc};
use chrono_tz::{America::New_York, Tz};
use libcal_sim::{
    BookingRef, CancelledBy, NewBooking, NewRow, NewSpace, RequestRecord, RowEdit, SimConfig,
    SimHandle, Simulator, Status,
};
use lockbridge_domain::{PinValidity, TimeZone};
use remotelock_sim::{GuestSnapshot, PersonStatus};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{
    intake_api::IntakeClient,
    services::{self, Running},
    system::{TestSystem, unique_patron},
};
pub use gate::IntakeGate;

/// booking-intake's `intake.tokens.connector`, the connector's `libcal.intake_token`.
pub const CONNECTOR_TOKEN: &str = "test-libcal-connector-token";
pub const POLL_INTERVAL: &str = "300ms";
/// The connector's `libcal.missing_polls_before_cancel`.
pub const MISSING_POLLS: usize = 3;
/// The connector's `libcal.request_timeout`, to LibCal and to intake.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The library's zone, the LibCal instance's and the RemoteLock lock's.
pub const ZONE: Tz = New_York;
/// How long an outcome may take on a loaded machine.
pub const WAIT: Duration = Duration::from_secs(60);
/// The provisioner's default lead time and grace (config/default.toml).
const LEAD: chrono::Duration = chrono::Duration::minutes(15);
const GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// The LibCal library: one location with one category, a room linked to the RemoteLock lock,
/// a room without a lock, and a hall booked per seat.
pub struct Library {
    pub lid: u32,
    pub cid: u32,
    pub linked_room: u32,
    pub unlinked_room: u32,
    pub hall: u32,
    pub seats: Vec<u32>,
}

/// What one booking row books.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    LinkedRoom,
    UnlinkedRoom,
    /// The hall's n-th seat.
    Seat(usize),
    /// Another space (one added later, say) by its LibCal id, and its seat if it has seats.
    Other {
        eid: u32,
        seat: Option<u32>,
    },
}

/// A LibCal booking of one row, and its id in lockbridge.
#[derive(Debug, Clone)]
pub struct Booked {
    pub book_id: String,
    pub row_id: u64,
    /// `libcal-<row id>` (mapping.rs).
    pub booking_id: String,
    pub patron: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

pub struct LibcalSystem {
    pub system: TestSystem,
    pub libcal: SimHandle,
    /// Between the connector and booking-intake.
    pub gate: IntakeGate,
    pub library: Library,
    /// The RemoteLock lock the linked room opens.
    pub lock: String,
    /// booking-intake's API as the connector's source.
    pub intake: IntakeClient,
    connector: Option<Running>,
    /// More connectors on the same database, as other processes.
    more_connectors: Vec<Running>,
    overrides: Vec<(&'static str, String)>,
}

impl LibcalSystem {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts everything, the connector with `extra` settings (dotted keys), and waits until
    /// the connector's catalogue is in intake to link the room.
    pub async fn start_with(extra: &[(&'static str, String)]) -> Self {
        Self::start_against(SimConfig::default(), extra).await
    }

    /// As [`Self::start_with`], against a LibCal simulator configured so.
    pub async fn start_against(libcal: SimConfig, extra: &[(&'static str, String)]) -> Self {
        let system = TestSystem::start_with(
            remotelock_sim::SimConfig::default(),
            &[("intake.tokens.connector", CONNECTOR_TOKEN.to_owned())],
        )
        .await;
        let libcal = Simulator::start(libcal)
            .await
            .expect("the LibCal simulator starts");
        let library = Library::create(&libcal);
        let gate = IntakeGate::start(system.intake.addr).await;
        let mut overrides = vec![
            ("database.url", system.db.url.clone()),
            ("connector.listen", "127.0.0.1:0".to_owned()),
            ("libcal.base_url", libcal.base_url().to_string()),
            ("libcal.client_id", libcal.config().client_id.clone()),
            (
                "libcal.client_secret",
                libcal.config().client_secret.clone(),
            ),
            ("libcal.location_ids", library.lid.to_string()),
            ("libcal.time_zone", ZONE.name().to_owned()),
            ("libcal.poll_interval", POLL_INTERVAL.to_owned()),
            (
                "libcal.request_timeout",
                format!("{}s", REQUEST_TIMEOUT.as_secs()),
            ),
            (
                "libcal.missing_polls_before_cancel",
                MISSING_POLLS.to_string(),
            ),
            ("libcal.intake_url", gate.url()),
            ("libcal.intake_token", CONNECTOR_TOKEN.to_owned()),
        ];
        overrides.extend(extra.iter().cloned());
        let intake = IntakeClient::new(system.intake.addr, CONNECTOR_TOKEN, system.http.clone());
        let mut this = Self {
            system,
            libcal,
            gate,
            library,
            lock: String::new(),
            intake,
            connector: None,
            more_connectors: Vec::new(),
            overrides,
        };
        this.start_connector().await;
        this.system.authorize().await;
        // The last entry the catalogue sync sends: then all of it is in intake.
        let last_seat = this
            .library
            .intake_id(Place::Seat(this.library.seats.len() - 1));
        this.wait_for_space(&last_seat).await;
        let room = space_id(this.library.linked_room);
        this.lock = this.system.sim.seed().locks[0].id.clone();
        let (status, body) = this.system.link(&room, &this.lock).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        this
    }

    pub async fn start_connector(&mut self) {
        assert!(self.connector.is_none(), "the connector already runs");
        self.connector = Some(self.spawn_connector().await);
    }

    /// Starts another connector on the same database, as a second process would run.
    pub async fn add_connector(&mut self) {
        let connector = self.spawn_connector().await;
        self.more_connectors.push(connector);
    }

    async fn spawn_connector(&self) -> Running {
        let settings = services::settings::<libcal_connector::Sections>(&self.overrides);
        services::spawn::<libcal_connector::Application>(settings).await
    }

    /// Stops the connector and starts it again with `key` set to `value`.
    pub async fn restart_connector_with(&mut self, key: &'static str, value: &str) {
        self.stop_connector().await;
        self.overrides.retain(|(k, _)| *k != key);
        self.overrides.push((key, value.to_owned()));
        self.start_connector().await;
    }

    /// Stops the connector as SIGTERM would.
    pub async fn stop_connector(&mut self) {
        self.connector
            .take()
            .expect("the connector runs")
            .stop()
            .await;
    }

    /// The connector's `/readyz` status.
    pub async fn readyz(&self) -> StatusCode {
        let connector = self.connector.as_ref().expect("the connector runs");
        self.system
            .http
            .get(connector.url("/readyz"))
            .send()
            .await
            .expect("the connector answers")
            .status()
    }

    pub async fn wait_for_readyz(&self, expected: StatusCode) {
        until(&format!("/readyz answering {expected}"), || async move {
            let status = self.readyz().await;
            seen(status == expected, status)
        })
        .await;
    }

    /// A transaction of one row for a new patron, `starts_at` … `ends_at`.
    pub fn book(
        &self,
        status: Status,
        place: Place,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Booked {
        let patron = unique_patron();
        let made = self.book_rows(status, &patron, &[(place, starts_at, ends_at)]);
        Booked::of(&made, 0, &patron, starts_at, ends_at)
    }

    /// One transaction (one `bookId`) of several rows for `patron`.
    pub fn book_rows(
        &self,
        status: Status,
        patron: &str,
        rows: &[(Place, DateTime<Utc>, DateTime<Utc>)],
    ) -> BookingRef {
        let rows = rows
            .iter()
            .map(|&(place, from, to)| self.library.row(place, from, to))
            .collect();
        self.libcal
            .book(NewBooking {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                email: patron.to_owned(),
                status,
                rows,
                remote: false,
            })
            .expect("the simulator takes the booking")
    }

    /// A space added to the library's category now: its LibCal id.
    pub fn add_space(&self, name: &str, bookable_as_whole: bool) -> u32 {
        add_space(&self.libcal, self.library.cid, name, bookable_as_whole)
    }

    /// The name and kind intake's catalogue has for `space_id`.
    pub async fn catalogue_entry(&self, space_id: &str) -> Option<(String, String)> {
        sqlx::query_as("SELECT name, kind::text FROM spaces WHERE space_id = $1")
            .bind(space_id)
            .fetch_optional(&self.system.db.pool)
            .await
            .expect("spaces readable")
    }

    pub fn confirm(&self, booked: &Booked) {
        self.libcal.confirm(&booked.book_id).expect("confirmed");
    }

    pub fn approve(&self, booked: &Booked) {
        self.libcal.approve(&booked.book_id).expect("approved");
    }

    pub fn deny(&self, booked: &Booked) {
        self.libcal.deny(&booked.book_id).expect("denied");
    }

    pub fn cancel(&self, booked: &Booked, by: CancelledBy) {
        self.libcal.cancel(&booked.book_id, by).expect("cancelled");
    }

    pub fn delete(&self, booked: &Booked) {
        self.libcal.delete(&booked.book_id).expect("deleted");
    }

    /// A staff edit of the row; `booked` takes its new times.
    pub fn edit(&self, booked: &mut Booked, edit: RowEdit) {
        booked.starts_at = edit.from.unwrap_or(booked.starts_at);
        booked.ends_at = edit.to.unwrap_or(booked.ends_at);
        self.libcal.edit_row(booked.row_id, edit).expect("edited");
    }

    /// Also moves the row to `place`.
    pub fn move_to(&self, booked: &mut Booked, place: Place) {
        let (eid, seat_id) = self.library.place(place);
        self.edit(
            booked,
            RowEdit {
                eid: Some(eid),
                seat_id,
                ..RowEdit::default()
            },
        );
    }

    /// The first-page requests for bookings: one per poll (and location, and 365 days of the
    /// window), but for a 401, which is followed by the same request with a new token.
    fn first_pages(&self) -> impl Iterator<Item = RequestRecord> {
        self.libcal
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/space/bookings?") && r.path.contains("&page=1&"))
    }

    pub fn polls_started(&self) -> usize {
        self.first_pages().filter(|r| r.status != 401).count()
    }

    /// Lookups of transaction `book_id` on its own (`/space/booking/{bookId}`) that arrived
    /// after `since` and before `until`, and that LibCal answered.
    pub fn answered_lookups_between(
        &self,
        book_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> usize {
        let log = self.libcal.requests();
        log.iter()
            .filter(|r| r.path.contains("/space/booking/") && r.path.contains(book_id))
            .filter(|r| r.status == 200 && since < r.at && r.at < until)
            .count()
    }

    /// Waits until at least `count` polls have run entirely after this call: each of them
    /// saw LibCal as it is now, and has stored what it decided.
    pub async fn wait_polls(&self, count: usize) {
        // A poll is logged once LibCal answered its first page: the next one, not logged yet,
        // may have read LibCal before this call. Each poll after it starts once the one
        // before has finished, so `count` of them have finished when one more has started.
        let target = self.polls_started() + count + 2;
        until(&format!("{count} more polls"), || async move {
            let started = self.polls_started();
            seen(started >= target, started)
        })
        .await;
    }

    /// The booking as intake has it for the connector's source, once it has it.
    pub async fn booking(&self, booking_id: &str) -> Option<Value> {
        let response = self
            .intake
            .request(Method::GET, &format!("/v1/bookings/{booking_id}"))
            .send()
            .await
            .expect("intake answers");
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(response.status(), StatusCode::OK, "GET {booking_id}");
        Some(response.json().await.expect("a booking"))
    }

    /// Waits until intake has the booking in a state `wanted` accepts; answers it.
    pub async fn wait_for_booking(
        &self,
        booking_id: &str,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let wanted = &wanted;
        until(&format!("{booking_id} {what}"), || async move {
            match self.booking(booking_id).await {
                Some(booking) if wanted(&booking) => Ok(booking),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// Waits until the booking's PIN is in `state` (`issued`, `revoked`, …).
    pub async fn wait_for_pin(&self, booking_id: &str, state: &str) -> Value {
        self.wait_for_booking(booking_id, &format!("with its PIN {state}"), |b| {
            b["pin"]["state"] == state
        })
        .await
    }

    /// Waits until intake has the booking at `revision` with its PIN in `pin`.
    pub async fn wait_for_revision(&self, booking_id: &str, revision: i64, pin: &str) -> Value {
        self.wait_for_booking(
            booking_id,
            &format!("at revision {revision} with its PIN {pin}"),
            |b| b["revision"] == revision && crate::system::pin_state_is(&b["pin"]["state"], pin),
        )
        .await
    }

    /// Waits until intake has the booking as tentative: no PIN, and (for intake) no event yet.
    pub async fn wait_for_tentative(&self, booking_id: &str) -> Value {
        let shown = self
            .wait_for_booking(booking_id, "tentative", |b| b["status"] == "tentative")
            .await;
        assert_eq!(shown["pin"]["state"], "not_applicable", "{shown}");
        assert!(self.booking_events(booking_id).await.is_empty());
        shown
    }

    /// Waits until the provisioner recorded that the booking gets no PIN, and every event is
    /// out, so that an email it wrongly caused would be on its way.
    pub async fn wait_for_no_pin(&self, booking_id: &str) {
        until(
            &format!("{booking_id} recorded without a PIN"),
            || async move {
                let state: Option<String> = sqlx::query_scalar(
                    "SELECT state::text FROM booking_pins WHERE booking_id = $1",
                )
                .bind(booking_id)
                .fetch_optional(&self.system.db.pool)
                .await
                .expect("booking_pins readable");
                seen(state.as_deref() == Some("not_applicable"), state)
            },
        )
        .await;
        self.system.wait_for_outbox_drained(WAIT).await;
    }

    /// The RemoteLock guests of the booking that still open a door.
    pub fn live_guests(&self, booking_id: &str) -> Vec<GuestSnapshot> {
        self.system
            .guests_for(booking_id)
            .into_iter()
            .filter(|g| g.status != PersonStatus::Deactivated && g.deleted_at.is_none())
            .collect()
    }

    /// Waits until the booking has exactly one live guest with the booking's window in the
    /// lock's wall-clock time (widened across a repeated hour, as `PinValidity::in_zone`
    /// says), and asserts it has `pin` and opens the linked room's lock only.
    pub async fn wait_for_guest(&self, booked: &Booked, pin: &str) -> GuestSnapshot {
        let validity = PinValidity {
            valid_from: booked.starts_at - LEAD,
            valid_until: booked.ends_at + GRACE,
        };
        let local = validity.in_zone(TimeZone::from_stored(ZONE.name()));
        let window = (local.starts_at, local.ends_at);
        let what = format!("one guest of {} for {window:?}", booked.booking_id);
        let guest = until(&what, || async move {
            match self.live_guests(&booked.booking_id).as_slice() {
                [guest] if (guest.starts_at, guest.ends_at) == window => Ok(guest.clone()),
                guests => Err(format!("{guests:?}")),
            }
        })
        .await;
        assert_eq!(guest.pin.as_deref(), Some(pin));
        let accesses = self.system.sim.accesses();
        let mut doors = accesses.iter().filter(|a| a.access_person_id == guest.id);
        assert!(doors.all(|a| a.accessible_id == self.lock), "{accesses:?}");
        guest
    }

    /// Asserts intake holds the booking as LibCal has it: its space, its instants, status.
    pub fn assert_as_in_libcal(&self, booked: &Booked, shown: &Value, space: &str, status: &str) {
        assert_eq!(shown["space_id"], space, "{shown}");
        assert_eq!(shown["status"], status, "{shown}");
        assert_eq!(shown["starts_at"], rfc3339(booked.starts_at), "{shown}");
        assert_eq!(shown["ends_at"], rfc3339(booked.ends_at), "{shown}");
        assert_eq!(shown["patron"]["email"], booked.patron.as_str());
        assert_eq!(shown["patron"]["name"], "Ada Lovelace");
    }

    /// Waits for the patron's `count`-th email and answers the last, which must carry `pin`.
    pub async fn wait_for_pin_email(&self, patron: &str, count: usize, pin: &str) {
        let emails = self.system.mailbox.wait_for(patron, count, WAIT).await;
        let last = emails.last().expect("an email");
        assert!(
            last.text.contains(pin),
            "the email has the PIN: {}",
            last.text
        );
    }

    /// The booking events intake published for `booking_id`, oldest first, each with the
    /// revision that caused it: `booking.confirmed@1`.
    pub async fn booking_events(&self, booking_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT concat(routing_key, '@', payload #>> '{data,revision}') FROM outbox
             WHERE routing_key LIKE 'booking.%' AND payload #>> '{data,booking_id}' = $1
             ORDER BY id",
        )
        .bind(booking_id)
        .fetch_all(&self.system.db.pool)
        .await
        .expect("outbox readable")
    }

    /// Waits until the connector owes intake nothing.
    pub async fn wait_until_sent(&self) {
        until("the connector to have sent everything", || async move {
            let owed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM libcal_bookings WHERE sent_revision < revision",
            )
            .fetch_one(&self.system.db.pool)
            .await
            .expect("libcal_bookings readable");
            seen(owed == 0, owed)
        })
        .await;
    }

    /// Asserts that `polls` more polls make no request to intake at all.
    pub async fn assert_quiet(&self, polls: usize) {
        self.wait_until_sent().await;
        let before = self.gate.log().len();
        self.wait_polls(polls).await;
        let after = self.gate.log();
        assert_eq!(
            after.len(),
            before,
            "polls of an unchanged LibCal wrote to intake: {:?}",
            &after[before..]
        );
    }

    async fn wait_for_space(&self, space_id: &str) {
        until(
            &format!("{space_id} in intake's catalogue"),
            || async move {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT space_id FROM spaces WHERE space_id = $1")
                        .bind(space_id)
                        .fetch_optional(&self.system.db.pool)
                        .await
                        .expect("spaces readable");
                seen(found.is_some(), "not yet")
            },
        )
        .await;
    }
}

impl Library {
    fn create(libcal: &SimHandle) -> Self {
        let lid = libcal.add_location("Riverside Main Library", ZONE);
        let cid = libcal
            .add_category(lid, "Group Study Rooms")
            .expect("category");
        let space = |name, bookable_as_whole| add_space(libcal, cid, name, bookable_as_whole);
        let linked_room = space("Study Room 101", true);
        let unlinked_room = space("Study Room 102", true);
        let hall = space("Quiet Reading Hall", false);
        let seats = ["Seat A1", "Seat A2"]
            .iter()
            .map(|name| libcal.add_seat(hall, name).expect("seat"))
            .collect();
        Self {
            lid,
            cid,
            linked_room,
            unlinked_room,
            hall,
            seats,
        }
    }

    /// The space and seat a place is in LibCal.
    pub fn place(&self, place: Place) -> (u32, Option<u32>) {
        match place {
            Place::LinkedRoom => (self.linked_room, None),
            Place::UnlinkedRoom => (self.unlinked_room, None),
            Place::Seat(n) => (self.hall, Some(self.seats[n])),
            Place::Other { eid, seat } => (eid, seat),
        }
    }

    /// Its id in intake: `libcal-space-<eid>` or `libcal-seat-<seat_id>`.
    pub fn intake_id(&self, place: Place) -> String {
        match self.place(place) {
            (_, Some(seat)) => format!("libcal-seat-{seat}"),
            (eid, None) => space_id(eid),
        }
    }

    fn row(&self, place: Place, from: DateTime<Utc>, to: DateTime<Utc>) -> NewRow {
        let (eid, seat_id) = self.place(place);
        NewRow {
            eid,
            seat_id,
            from,
            to,
        }
    }
}

impl Booked {
    /// Row `index` of a transaction.
    pub fn of(
        made: &BookingRef,
        index: usize,
        patron: &str,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Self {
        let row_id = made.row_ids[index];
        Self {
            book_id: made.book_id.clone(),
            row_id,
            booking_id: format!("libcal-{row_id}"),
            patron: patron.to_owned(),
            starts_at,
            ends_at,
        }
    }
}

/// A space of category `cid`, as staff add one in LibCal.
fn add_space(libcal: &SimHandle, cid: u32, name: &str, bookable_as_whole: bool) -> u32 {
    let space = NewSpace {
        name: name.to_owned(),
        capacity: 6,
        bookable_as_whole,
    };
    libcal.add_space(cid, space).expect("a space")
}

pub fn space_id(eid: u32) -> String {
    format!("libcal-space-{eid}")
}

/// `hh:mm` in the library's zone, `days` after today there.
pub fn library_time(days: u64, hh: u32, mm: u32) -> DateTime<Utc> {
    let today = Utc::now().with_timezone(&ZONE).date_naive();
    let time = NaiveTime::from_hms_opt(hh, mm, 0).expect("a time of day");
    (today + Days::new(days))
        .and_time(time)
        .and_local_timezone(ZONE)
        .earliest()
        .expect("a time that exists")
        .with_timezone(&Utc)
}

/// As intake writes instants: UTC with `Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Polls `check` every 100 ms until it answers `Ok`, for at most [`WAIT`]; then fails with
/// what it last answered.
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(found) => return found,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `Ok` when `done`, else what was seen.
pub fn seen<T: std::fmt::Debug>(done: bool, seen: T) -> Result<(), String> {
    if done {
        Ok(())
    } else {
        Err(format!("{seen:?}"))
    }
}
