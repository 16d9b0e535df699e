//! The fixed part of the seeded account: user, account, locations and locks. Ids are
//! constants so a local demo (and compose) can reference them.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use uuid::{Uuid, uuid};

use crate::accounts::Account;
use crate::directory::{Accessible, AccessibleType};

/// Ids and key facts of the seeded records, for tests and the demo.
#[derive(Debug, Clone, Serialize)]
pub struct Seed {
    pub account_id: String,
    pub locations: Vec<SeedLocation>,
    pub locks: Vec<SeedLock>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedLocation {
    pub id: String,
    pub name: String,
    pub time_zone: Tz,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedLock {
    pub id: String,
    pub name: String,
    pub location_id: String,
    pub power_level: u8,
    pub connected: bool,
}

pub struct User {
    pub id: Uuid,
    pub name: &'static str,
    pub email: &'static str,
    pub handle: &'static str,
    pub created_at: DateTime<Utc>,
}

pub struct Location {
    pub id: Uuid,
    pub name: &'static str,
    pub address: &'static str,
    pub city: &'static str,
    pub state: &'static str,
    pub postal_code: &'static str,
    pub country: &'static str,
    pub phone: &'static str,
    pub time_zone: Tz,
    pub created_at: DateTime<Utc>,
}

pub struct Model {
    pub id: Uuid,
    pub number: &'static str,
}

pub struct Lock {
    pub id: Uuid,
    pub name: &'static str,
    pub serial_number: &'static str,
    pub location_id: Uuid,
    pub power_source: &'static str,
    pub power_level: u8,
    pub connected: bool,
    pub connected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub struct Catalog {
    /// The account that holds all of the below; tests may add empty ones (`crate::accounts`).
    pub account: Account,
    pub user: User,
    /// The first location's time zone decides guest status (see README).
    pub locations: Vec<Location>,
    pub model: Model,
    pub locks: Vec<Lock>,
}

const RIVERSIDE_MAIN: Uuid = uuid!("7c1e4f0a-2b9d-4d3e-8a57-1f2e3d4c5b01");
const BERLIN_BRANCH: Uuid = uuid!("7c1e4f0a-2b9d-4d3e-8a57-1f2e3d4c5b02");

impl Catalog {
    /// The seeded account; lock connection times are relative to `now`.
    pub fn seeded(now: DateTime<Utc>) -> Self {
        let day = |d: u32| {
            Utc.with_ymd_and_hms(2024, 3, d, 9, 0, 0)
                .single()
                .expect("valid date")
        };
        // Live locks were seen within a heartbeat, the offline one days ago.
        let seen = |connected: bool| {
            if connected {
                now - Duration::minutes(7)
            } else {
                now - Duration::days(3)
            }
        };
        Self {
            account: Account {
                id: uuid!("2d7e8c1a-4b3f-4e5a-9c61-0a1b2c3d4e01"),
                name: "Riverside Public Library".to_owned(),
                owner_role_id: uuid!("2d7e8c1a-4b3f-4e5a-9c61-0a1b2c3d4e03"),
                created_at: day(1),
            },
            user: User {
                id: uuid!("2d7e8c1a-4b3f-4e5a-9c61-0a1b2c3d4e02"),
                name: "Morgan Reyes",
                email: "facilities@riverside-library.example",
                handle: "riverside-facilities",
                created_at: day(1),
            },
            locations: vec![
                Location {
                    id: RIVERSIDE_MAIN,
                    name: "Riverside Main",
                    address: "100 River Street",
                    city: "Riverside",
                    state: "NY",
                    postal_code: "10001",
                    country: "US",
                    phone: "+1 212 555 0100",
                    time_zone: chrono_tz::America::New_York,
                    created_at: day(2),
                },
                Location {
                    id: BERLIN_BRANCH,
                    name: "Berlin Branch",
                    address: "Flussufer 12",
                    city: "Berlin",
                    state: "BE",
                    postal_code: "10115",
                    country: "DE",
                    phone: "+49 30 5550100",
                    time_zone: chrono_tz::Europe::Berlin,
                    created_at: day(3),
                },
            ],
            model: Model {
                id: uuid!("9a3b5c7d-1e2f-4a6b-8c9d-0e1f2a3b4c01"),
                number: "LS-6i",
            },
            locks: vec![
                Lock {
                    id: uuid!("e4b1c2d3-5f6a-4b7c-8d9e-0f1a2b3c4d01"),
                    name: "Study Room 101",
                    serial_number: "AC000W000213401",
                    location_id: RIVERSIDE_MAIN,
                    power_source: "lithium_battery",
                    power_level: 87,
                    connected: true,
                    connected_at: seen(true),
                    created_at: day(4),
                },
                Lock {
                    id: uuid!("e4b1c2d3-5f6a-4b7c-8d9e-0f1a2b3c4d02"),
                    name: "Study Room 102",
                    serial_number: "AC000W000213402",
                    location_id: RIVERSIDE_MAIN,
                    power_source: "alkaline_battery",
                    power_level: 54,
                    connected: true,
                    connected_at: seen(true),
                    created_at: day(5),
                },
                // Low battery.
                Lock {
                    id: uuid!("e4b1c2d3-5f6a-4b7c-8d9e-0f1a2b3c4d03"),
                    name: "Group Room 201",
                    serial_number: "AC000W000213403",
                    location_id: RIVERSIDE_MAIN,
                    power_source: "alkaline_battery",
                    power_level: 12,
                    connected: true,
                    connected_at: seen(true),
                    created_at: day(6),
                },
                // Offline.
                Lock {
                    id: uuid!("e4b1c2d3-5f6a-4b7c-8d9e-0f1a2b3c4d04"),
                    name: "Reading Room B1",
                    serial_number: "AC000W000213404",
                    location_id: BERLIN_BRANCH,
                    power_source: "hardwire",
                    power_level: 100,
                    connected: false,
                    connected_at: seen(false),
                    created_at: day(7),
                },
            ],
        }
    }

    pub fn location(&self, id: Uuid) -> Option<&Location> {
        self.locations.iter().find(|l| l.id == id)
    }

    pub fn lock(&self, id: Uuid) -> Option<&Lock> {
        self.locks.iter().find(|l| l.id == id)
    }

    pub fn locks_at(&self, location_id: Uuid) -> impl Iterator<Item = &Lock> {
        self.locks
            .iter()
            .filter(move |l| l.location_id == location_id)
    }

    /// The locks an access to `accessible` reaches: the lock itself, or every lock of the
    /// location.
    pub fn locks_reached(&self, accessible: Accessible) -> Vec<&Lock> {
        match accessible.kind {
            AccessibleType::Lock => self.lock(accessible.id).into_iter().collect(),
            AccessibleType::Location => self.locks_at(accessible.id).collect(),
        }
    }

    /// The zone in which guest windows are judged (current/upcoming/expired).
    pub fn primary_time_zone(&self) -> Tz {
        self.locations[0].time_zone
    }

    pub fn seed(&self) -> Seed {
        Seed {
            account_id: self.account.id.to_string(),
            locations: self
                .locations
                .iter()
                .map(|l| SeedLocation {
                    id: l.id.to_string(),
                    name: l.name.to_owned(),
                    time_zone: l.time_zone,
                })
                .collect(),
            locks: self
                .locks
                .iter()
                .map(|l| SeedLock {
                    id: l.id.to_string(),
                    name: l.name.to_owned(),
                    location_id: l.location_id.to_string(),
                    power_level: l.power_level,
                    connected: l.connected,
                })
                .collect(),
        }
    }
}
