//! RemoteLock's resources as typed values, and the JSON envelope around them
//! (remotelock-api.md §2.1): answers are `{"data": {"type", "id", "attributes", ...}}` (an array
//! for collections, with paging in `meta`); requests are `{"type", "attributes"}`.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use lockbridge_domain::{AccessId, GuestId, LockId, LockLocalWindow, Pin, TimeZone};

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
}

/// A RemoteLock location's id: not the booking system's [`LocationId`](lockbridge_domain::LocationId).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RemoteLockLocationId(String);

impl RemoteLockLocationId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RemoteLockLocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    pub id: RemoteLockLocationId,
    pub name: String,
    /// The zone the location's locks read guest windows in.
    pub time_zone: TimeZone,
}

/// A device's `type` as RemoteLock names it (`lock`, `zwave_lock`, `thermostat`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceType(String);

impl DeviceType {
    /// Device types that take a custom PIN for an access guest. ResortLock and igloo locks
    /// compute their own codes, so they cannot follow bookings this way.
    pub const LOCKS: [&str; 4] = ["lock", "zwave_lock", "schlage_home_lock", "connector_lock"];

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_lock(&self) -> bool {
        Self::LOCKS.contains(&self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Device {
    pub id: LockId,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    pub name: String,
    pub location_id: Option<RemoteLockLocationId>,
    pub serial_number: Option<String>,
    pub model_number: Option<String>,
    /// `locked` or `unlocked`.
    pub state: Option<String>,
    /// Connected at this moment.
    pub connected: Option<bool>,
    /// Heartbeating regularly.
    pub alive: Option<bool>,
    pub connected_at: Option<DateTime<Utc>>,
    /// Battery percentage.
    pub power_level: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestStatus {
    Upcoming,
    Current,
    Expired,
    Deactivated,
}

impl GuestStatus {
    pub const ALL: [GuestStatus; 4] = [
        Self::Upcoming,
        Self::Current,
        Self::Expired,
        Self::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upcoming => "upcoming",
            Self::Current => "current",
            Self::Expired => "expired",
            Self::Deactivated => "deactivated",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccessGuest {
    pub id: GuestId,
    pub name: String,
    pub email: Option<String>,
    pub pin: Option<Pin>,
    pub status: GuestStatus,
    /// Wall-clock time in the zone of each lock the guest is granted.
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub created_at: DateTime<Utc>,
}

/// A guest's grant on one device (`access_person_access`).
#[derive(Debug, Clone, Deserialize)]
pub struct Access {
    pub id: AccessId,
    pub access_person_id: GuestId,
    pub accessible_type: String,
    /// The device (or, for grants made in RemoteLock's dashboard, the location or group).
    pub accessible_id: LockId,
    /// How many devices have the PIN so far, and how many failed to take it.
    pub devices_count: Option<u32>,
    pub devices_synced_count: Option<u32>,
    pub devices_pending_sync_count: Option<u32>,
    pub devices_failed_sync_count: Option<u32>,
}

/// Something a device or person did, as RemoteLock's `/events` lists it (remotelock-api.md
/// §3.8). Only what lockbridge reads is kept.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    /// The event name with an `_event` suffix, e.g. `access_person_sync_failed_event`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// `succeeded` or `failed`.
    pub status: Option<String>,
    /// For a sync failure, why: `pin_conflict`, `timeout`, …
    pub status_info: Option<String>,
    /// How a lock was worked (`pin`, …), for keypad events. The typed `pin` itself is never
    /// read: it is not a field here.
    pub method: Option<String>,
    pub power_level: Option<i32>,
    pub publisher_type: Option<String>,
    pub publisher_id: Option<String>,
    pub associated_resource_type: Option<String>,
    pub associated_resource_id: Option<String>,
}

impl Event {
    /// The event name without the `_event` suffix: `access_person_synced`, `unlocked`, …
    pub fn kind(&self) -> &str {
        self.event_type
            .strip_suffix("_event")
            .unwrap_or(&self.event_type)
    }

    /// The lock and the person it is about. For most events the lock publishes and the person
    /// is associated; `access_person_used` is the other way round (remotelock-api.md §3.8).
    pub fn lock_and_person(&self) -> (Option<&str>, Option<(&str, &str)>) {
        let publisher = self
            .publisher_type
            .as_deref()
            .zip(self.publisher_id.as_deref());
        let associated = self
            .associated_resource_type
            .as_deref()
            .zip(self.associated_resource_id.as_deref());
        let is_person = |(kind, _): &(&str, &str)| kind.starts_with("access_");
        let (lock, person) = match (publisher, associated) {
            (Some(p), a) if is_person(&p) => (a, Some(p)),
            (p, Some(a)) if is_person(&a) => (p, Some(a)),
            (p, _) => (p, None),
        };
        (lock.map(|(_, id)| id), person)
    }
}

/// What `create_access_guest` sends. The name should identify the booking, so a create whose
/// answer was lost can be found again with `find_access_guests`.
#[derive(Debug, Clone, Copy)]
pub struct NewAccessGuest<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub pin: &'a Pin,
    pub window: &'a LockLocalWindow,
}

/// A change to a guest: a moved window, a new PIN, or both.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestUpdate<'a> {
    pub window: Option<&'a LockLocalWindow>,
    pub pin: Option<&'a Pin>,
}

/// The `attributes` of a guest create or update.
#[derive(Debug, Serialize)]
pub(crate) struct GuestAttributes<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin: Option<&'a Pin>,
    /// Wall-clock, no offset: RemoteLock applies the lock's zone (remotelock-api.md §3.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
}

impl<'a> From<&NewAccessGuest<'a>> for GuestAttributes<'a> {
    fn from(guest: &NewAccessGuest<'a>) -> Self {
        Self {
            name: Some(guest.name),
            email: guest.email,
            ..GuestUpdate {
                window: Some(guest.window),
                pin: Some(guest.pin),
            }
            .into()
        }
    }
}

impl<'a> From<GuestUpdate<'a>> for GuestAttributes<'a> {
    fn from(update: GuestUpdate<'a>) -> Self {
        Self {
            name: None,
            email: None,
            pin: update.pin,
            starts_at: update.window.map(LockLocalWindow::remotelock_starts_at),
            ends_at: update.window.map(LockLocalWindow::remotelock_ends_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct GrantAttributes<'a> {
    pub accessible_type: &'a str,
    pub accessible_id: &'a LockId,
}

/// A request body: `{"type": ..., "attributes": {...}}`; `type` only where the collection is
/// polymorphic.
#[derive(Debug, Serialize)]
pub(crate) struct RequestBody<A> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<&'static str>,
    pub attributes: A,
}

/// A single-resource answer.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub(crate) struct Document<T> {
    pub data: Flattened<T>,
}

/// One page of a collection.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub(crate) struct Page<T> {
    pub data: Vec<Flattened<T>>,
    pub meta: PageMeta,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageMeta {
    pub total_pages: u32,
}

/// A resource read as one flat value: `id` and `type` beside the attributes, so each
/// resource type is a single struct.
#[derive(Debug)]
pub(crate) struct Flattened<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Flattened<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Resource {
            id: Value,
            #[serde(rename = "type")]
            resource_type: Value,
            attributes: Map<String, Value>,
        }
        let Resource {
            id,
            resource_type,
            mut attributes,
        } = Resource::deserialize(deserializer)?;
        attributes.insert("id".to_owned(), id);
        attributes.insert("type".to_owned(), resource_type);
        T::deserialize(Value::Object(attributes))
            .map(Flattened)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use serde_json::json;

    use super::*;

    #[test]
    fn guest_answer_is_flattened_and_times_are_local() {
        let answer = json!({"data": {
            "type": "access_guest",
            "id": "3f1c0f0e-7a59-4b8e-9d0a-4c1f1e6f9b11",
            "attributes": {
                "name": "lockbridge booking lc-1", "email": null, "pin": "482193",
                "status": "upcoming", "starts_at": "2026-12-01T13:45:00",
                "ends_at": "2026-12-01T15:35:00", "created_at": "2026-11-25T10:00:00Z",
                "source": "api"
            },
            "links": {"self": "http://api.remotelock.dev/access_persons/3f1c"}
        }});
        let guest = serde_json::from_value::<Document<AccessGuest>>(answer)
            .unwrap()
            .data
            .0;
        assert_eq!(guest.id.as_str(), "3f1c0f0e-7a59-4b8e-9d0a-4c1f1e6f9b11");
        assert_eq!(guest.status, GuestStatus::Upcoming);
        assert_eq!(guest.pin.unwrap().expose(), "482193");
        assert_eq!(
            guest.starts_at,
            NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(13, 45, 0)
                .unwrap()
        );
    }

    #[test]
    fn device_type_comes_from_the_envelope() {
        let page = json!({
            "data": [
                {"type": "lock", "id": "d1", "attributes": {"name": "Room 1", "power_level": 87,
                 "connected": true, "location_id": "l1"}},
                {"type": "thermostat", "id": "d2", "attributes": {"name": "Heat"}}
            ],
            "meta": {"page": 1, "per_page": 50, "total_count": 2, "total_pages": 1}
        });
        let page = serde_json::from_value::<Page<Device>>(page).unwrap();
        let kinds: Vec<bool> = page
            .data
            .iter()
            .map(|d| d.0.device_type.is_lock())
            .collect();
        assert_eq!(kinds, [true, false]);
        assert_eq!(page.data[0].0.power_level, Some(87));
        assert_eq!(page.meta.total_pages, 1);
    }

    #[test]
    fn guest_request_sends_wall_clock_times_without_offset() {
        let pin = Pin::parse("482193").unwrap();
        let window = LockLocalWindow {
            starts_at: NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(13, 45, 0)
                .unwrap(),
            ends_at: NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(15, 35, 0)
                .unwrap(),
            time_zone: "America/New_York".parse().unwrap(),
        };
        let guest = NewAccessGuest {
            name: "lockbridge booking lc-1",
            email: None,
            pin: &pin,
            window: &window,
        };
        let body = RequestBody {
            resource_type: Some("access_guest"),
            attributes: GuestAttributes::from(&guest),
        };
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"type": "access_guest", "attributes": {
                "name": "lockbridge booking lc-1", "pin": "482193",
                "starts_at": "2026-12-01T13:45:00", "ends_at": "2026-12-01T15:35:00"
            }})
        );
        let update = GuestUpdate {
            pin: Some(&pin),
            ..GuestUpdate::default()
        };
        assert_eq!(
            serde_json::to_value(GuestAttributes::from(update)).unwrap(),
            json!({"pin": "482193"})
        );
    }
}
