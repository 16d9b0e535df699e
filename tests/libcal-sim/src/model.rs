//! The catalogue (locations → categories → spaces → seats) and booking rows, as stored.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct Location {
    pub lid: u32,
    pub name: String,
    /// Zone in which this location's booking times are written and its days are counted.
    pub time_zone: Tz,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub cid: u32,
    pub lid: u32,
    pub name: String,
}

/// A bookable space ("item"). `bookable_as_whole == false` means it is booked per seat.
#[derive(Debug, Clone)]
pub struct Space {
    pub id: u32,
    pub cid: u32,
    pub name: String,
    pub capacity: u32,
    pub bookable_as_whole: bool,
}

#[derive(Debug, Clone)]
pub struct Seat {
    pub id: u32,
    pub space_id: u32,
    pub name: String,
}

/// The status strings of doc §5, spelled as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Confirmed,
    Tentative,
    #[serde(rename = "Mediated Tentative")]
    MediatedTentative,
    #[serde(rename = "Mediated Approved")]
    MediatedApproved,
    #[serde(rename = "Mediated Denied")]
    MediatedDenied,
    #[serde(rename = "Cancelled by User")]
    CancelledByUser,
    #[serde(rename = "Cancelled by Admin")]
    CancelledByAdmin,
    #[serde(rename = "Cancelled by System")]
    CancelledBySystem,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "Confirmed",
            Self::Tentative => "Tentative",
            Self::MediatedTentative => "Mediated Tentative",
            Self::MediatedApproved => "Mediated Approved",
            Self::MediatedDenied => "Mediated Denied",
            Self::CancelledByUser => "Cancelled by User",
            Self::CancelledByAdmin => "Cancelled by Admin",
            Self::CancelledBySystem => "Cancelled by System",
        }
    }

    pub fn is_cancelled(self) -> bool {
        matches!(
            self,
            Self::CancelledByUser | Self::CancelledByAdmin | Self::CancelledBySystem
        )
    }

    pub fn is_tentative(self) -> bool {
        matches!(self, Self::Tentative | Self::MediatedTentative)
    }
}

/// Who cancelled: picks the `Cancelled by …` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelledBy {
    User,
    Admin,
    System,
}

impl CancelledBy {
    pub fn status(self) -> Status {
        match self {
            Self::User => Status::CancelledByUser,
            Self::Admin => Status::CancelledByAdmin,
            Self::System => Status::CancelledBySystem,
        }
    }
}

/// One row of `/space/bookings`; rows of one transaction share `book_id`, `id` is the row's
/// own stable identity (edits keep it).
#[derive(Debug, Clone)]
pub struct BookingRow {
    pub id: u64,
    pub book_id: String,
    pub eid: u32,
    pub seat_id: Option<u32>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub cancelled: Option<DateTime<Utc>>,
    pub status: Status,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub remote: bool,
}
