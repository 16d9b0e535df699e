//! In-memory state behind one mutex, and the test hooks that change it.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::faults::Faults;
use crate::model::{BookingRow, CancelledBy, Category, Location, Seat, Space, Status};
use crate::request_log::RequestLog;
use crate::tokens::Tokens;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("no location {0}")]
    NoLocation(u32),
    #[error("no category {0}")]
    NoCategory(u32),
    #[error("no space {0}")]
    NoSpace(u32),
    #[error("no seat {seat} in space {space}")]
    NoSeat { space: u32, seat: u32 },
    #[error("space {0} is booked per seat: a seat_id is needed")]
    SeatNeeded(u32),
    #[error("space {0} is booked as a whole: it has no seats")]
    NoSeats(u32),
    #[error("no booking {0}")]
    NoBooking(String),
    #[error("no booking row {0}")]
    NoRow(u64),
    #[error("a booking needs at least one row")]
    NoRows,
    #[error("a row must end after it starts")]
    EmptyInterval,
    #[error("a booking cannot start as {0}: make it, then deny or cancel it")]
    BadInitialStatus(&'static str),
    #[error("booking {book_id} is {status}, which cannot be {action}")]
    BadTransition {
        book_id: String,
        status: &'static str,
        action: &'static str,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewSpace {
    pub name: String,
    pub capacity: u32,
    /// `false`: booked per seat (add seats with `add_seat`).
    pub bookable_as_whole: bool,
}

/// One row of a new booking; `seat_id` is required exactly when the space is booked per seat.
#[derive(Debug, Clone, Deserialize)]
pub struct NewRow {
    pub eid: u32,
    #[serde(default)]
    pub seat_id: Option<u32>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A reservation transaction: every row gets the same `bookId`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewBooking {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// Where it starts: `Confirmed`, `Tentative` (awaiting the patron's e-mail confirmation),
    /// `Mediated Tentative` (awaiting staff) or `Mediated Approved`.
    pub status: Status,
    pub rows: Vec<NewRow>,
    /// Made by an Outlook/Google sync: hidden from `/space/bookings` without `include_remote=1`.
    #[serde(default)]
    pub remote: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookingRef {
    pub book_id: String,
    pub row_ids: Vec<u64>,
}

/// A staff edit of one row: anything left `None` stays.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RowEdit {
    pub eid: Option<u32>,
    pub seat_id: Option<u32>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct Data {
    pub locations: Vec<Location>,
    pub categories: Vec<Category>,
    pub spaces: Vec<Space>,
    pub seats: Vec<Seat>,
    pub rows: Vec<BookingRow>,
    next_id: u32,
    next_row_id: u64,
}

impl Data {
    pub fn location(&self, lid: u32) -> Option<&Location> {
        self.locations.iter().find(|l| l.lid == lid)
    }

    pub fn category(&self, cid: u32) -> Option<&Category> {
        self.categories.iter().find(|c| c.cid == cid)
    }

    pub fn space(&self, id: u32) -> Option<&Space> {
        self.spaces.iter().find(|s| s.id == id)
    }

    pub fn seat(&self, id: u32) -> Option<&Seat> {
        self.seats.iter().find(|s| s.id == id)
    }

    /// Ids look like real ones (four to five digits) and never repeat across kinds, so a test
    /// that mixes up `lid`, `cid` and `eid` gets "not found" instead of a wrong hit.
    fn id(&mut self) -> u32 {
        self.next_id += 1;
        8800 + self.next_id
    }

    fn check_place(&self, eid: u32, seat_id: Option<u32>) -> Result<(), SimError> {
        let space = self.space(eid).ok_or(SimError::NoSpace(eid))?;
        match (space.bookable_as_whole, seat_id) {
            (true, None) => Ok(()),
            (true, Some(_)) => Err(SimError::NoSeats(eid)),
            (false, None) => Err(SimError::SeatNeeded(eid)),
            (false, Some(seat)) => match self.seat(seat) {
                Some(s) if s.space_id == eid => Ok(()),
                _ => Err(SimError::NoSeat { space: eid, seat }),
            },
        }
    }

    fn transaction(&mut self, book_id: &str) -> Result<Vec<&mut BookingRow>, SimError> {
        let rows: Vec<_> = self
            .rows
            .iter_mut()
            .filter(|r| r.book_id == book_id)
            .collect();
        if rows.is_empty() {
            return Err(SimError::NoBooking(book_id.to_owned()));
        }
        Ok(rows)
    }
}

pub struct SimState {
    pub config: SimConfig,
    pub data: Mutex<Data>,
    pub tokens: Tokens,
    pub faults: Faults,
    pub requests: RequestLog,
    pub shutdown: CancellationToken,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        Self {
            tokens: Tokens::new(config.token_ttl),
            config,
            data: Mutex::default(),
            faults: Faults::default(),
            requests: RequestLog::default(),
            shutdown: CancellationToken::new(),
        }
    }

    pub fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().expect("simulator state poisoned")
    }

    pub fn add_location(&self, name: &str, time_zone: Tz) -> u32 {
        let mut data = self.data();
        let lid = data.id();
        data.locations.push(Location {
            lid,
            name: name.to_owned(),
            time_zone,
        });
        lid
    }

    pub fn add_category(&self, lid: u32, name: &str) -> Result<u32, SimError> {
        let mut data = self.data();
        data.location(lid).ok_or(SimError::NoLocation(lid))?;
        let cid = data.id();
        data.categories.push(Category {
            cid,
            lid,
            name: name.to_owned(),
        });
        Ok(cid)
    }

    pub fn add_space(&self, cid: u32, space: NewSpace) -> Result<u32, SimError> {
        let mut data = self.data();
        data.category(cid).ok_or(SimError::NoCategory(cid))?;
        let id = data.id();
        data.spaces.push(Space {
            id,
            cid,
            name: space.name,
            capacity: space.capacity,
            bookable_as_whole: space.bookable_as_whole,
        });
        Ok(id)
    }

    pub fn add_seat(&self, space_id: u32, name: &str) -> Result<u32, SimError> {
        let mut data = self.data();
        let space = data.space(space_id).ok_or(SimError::NoSpace(space_id))?;
        if space.bookable_as_whole {
            return Err(SimError::NoSeats(space_id));
        }
        let id = data.id();
        data.seats.push(Seat {
            id,
            space_id,
            name: name.to_owned(),
        });
        Ok(id)
    }

    pub fn book(&self, booking: NewBooking) -> Result<BookingRef, SimError> {
        if booking.rows.is_empty() {
            return Err(SimError::NoRows);
        }
        // Ending states come through the hooks, which stamp `cancelled` as LibCal does.
        if booking.status.is_cancelled() || booking.status == Status::MediatedDenied {
            return Err(SimError::BadInitialStatus(booking.status.as_str()));
        }
        let mut data = self.data();
        for row in &booking.rows {
            data.check_place(row.eid, row.seat_id)?;
            if row.to <= row.from {
                return Err(SimError::EmptyInterval);
            }
        }
        let book_id = new_book_id();
        let created = Utc::now();
        let mut row_ids = Vec::new();
        for row in booking.rows {
            data.next_row_id += 1;
            let id = 10_000_000 + data.next_row_id;
            row_ids.push(id);
            data.rows.push(BookingRow {
                id,
                book_id: book_id.clone(),
                eid: row.eid,
                seat_id: row.seat_id,
                from: row.from,
                to: row.to,
                created,
                cancelled: None,
                status: booking.status,
                first_name: booking.first_name.clone(),
                last_name: booking.last_name.clone(),
                email: booking.email.clone(),
                remote: booking.remote,
            });
        }
        Ok(BookingRef { book_id, row_ids })
    }

    /// Moves every row of the transaction from one of `from` to `to`.
    fn transition(
        &self,
        book_id: &str,
        from: &[Status],
        to: Status,
        action: &'static str,
    ) -> Result<(), SimError> {
        let mut data = self.data();
        let rows = data.transaction(book_id)?;
        if let Some(row) = rows.iter().find(|r| !from.contains(&r.status)) {
            return Err(SimError::BadTransition {
                book_id: book_id.to_owned(),
                status: row.status.as_str(),
                action,
            });
        }
        let now = Utc::now();
        for row in rows {
            row.status = to;
            if to.is_cancelled() {
                row.cancelled = Some(now);
            }
        }
        Ok(())
    }

    /// The patron confirmed a `Tentative` booking by e-mail.
    pub fn confirm(&self, book_id: &str) -> Result<(), SimError> {
        self.transition(
            book_id,
            &[Status::Tentative],
            Status::Confirmed,
            "confirmed",
        )
    }

    pub fn approve(&self, book_id: &str) -> Result<(), SimError> {
        let pending = [Status::MediatedTentative];
        self.transition(book_id, &pending, Status::MediatedApproved, "approved")
    }

    pub fn deny(&self, book_id: &str) -> Result<(), SimError> {
        let pending = [Status::MediatedTentative];
        self.transition(book_id, &pending, Status::MediatedDenied, "denied")
    }

    pub fn cancel(&self, book_id: &str, by: CancelledBy) -> Result<(), SimError> {
        let live = [
            Status::Confirmed,
            Status::Tentative,
            Status::MediatedTentative,
            Status::MediatedApproved,
        ];
        self.transition(book_id, &live, by.status(), "cancelled")
    }

    /// Staff deleted the transaction: its rows vanish from both endpoints, with no cancelled
    /// status to say so (doc §7 names deletion beside denial [I]).
    pub fn delete(&self, book_id: &str) -> Result<(), SimError> {
        let mut data = self.data();
        data.transaction(book_id)?;
        data.rows.retain(|r| r.book_id != book_id);
        Ok(())
    }

    pub fn edit_row(&self, row_id: u64, edit: RowEdit) -> Result<(), SimError> {
        let mut data = self.data();
        let row = data
            .rows
            .iter()
            .find(|r| r.id == row_id)
            .ok_or(SimError::NoRow(row_id))?;
        let eid = edit.eid.unwrap_or(row.eid);
        // Moving to another space drops the old seat unless a new one is given.
        let seat_id = edit.seat_id.or(if edit.eid.is_some() {
            None
        } else {
            row.seat_id
        });
        let (from, to) = (edit.from.unwrap_or(row.from), edit.to.unwrap_or(row.to));
        data.check_place(eid, seat_id)?;
        if to <= from {
            return Err(SimError::EmptyInterval);
        }
        let row = data
            .rows
            .iter_mut()
            .find(|r| r.id == row_id)
            .expect("found above");
        (row.eid, row.seat_id, row.from, row.to) = (eid, seat_id, from, to);
        Ok(())
    }
}

/// `cs_` + 8 alphanumerics, the shape of real ids (doc §3.7).
fn new_book_id() -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(8)
        .map(char::from)
        .collect();
    format!("cs_{suffix}")
}
