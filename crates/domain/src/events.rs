//! The events on RabbitMQ (design §3.2, a contract; fields documented in docs/events.md).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{
    BookingId, BookingStatus, LocationId, LockId, Patron, Pin, SpaceId, TimeZone, TraceParent,
};

pub const SCHEMA_VERSION: u32 = 1;

pub const BOOKINGS_EXCHANGE: &str = "lockbridge.bookings";
pub const PINS_EXCHANGE: &str = "lockbridge.pins";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed,
    #[serde(rename = "booking.changed")]
    BookingChanged,
    #[serde(rename = "booking.cancelled")]
    BookingCancelled,
    #[serde(rename = "pin.issued")]
    PinIssued,
    #[serde(rename = "pin.revoked")]
    PinRevoked,
    #[serde(rename = "pin.failed")]
    PinFailed,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::BookingConfirmed,
        Self::BookingChanged,
        Self::BookingCancelled,
        Self::PinIssued,
        Self::PinRevoked,
        Self::PinFailed,
    ];

    /// The routing key, which is also the AMQP `type` property.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BookingConfirmed => "booking.confirmed",
            Self::BookingChanged => "booking.changed",
            Self::BookingCancelled => "booking.cancelled",
            Self::PinIssued => "pin.issued",
            Self::PinRevoked => "pin.revoked",
            Self::PinFailed => "pin.failed",
        }
    }

    pub fn exchange(self) -> &'static str {
        match self {
            Self::BookingConfirmed | Self::BookingChanged | Self::BookingCancelled => {
                BOOKINGS_EXCHANGE
            }
            Self::PinIssued | Self::PinRevoked | Self::PinFailed => PINS_EXCHANGE,
        }
    }
}

/// Every message's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    /// Shared by all events of one booking, so its path can be followed across services.
    pub correlation_id: Uuid,
    /// The W3C trace context of the request that caused it, when the upstream sent one; also
    /// the AMQP header `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
    pub data: T,
}

impl<T: Serialize + DeserializeOwned> Envelope<T> {
    pub fn new(event_type: EventType, correlation_id: Uuid, data: T) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type,
            schema_version: SCHEMA_VERSION,
            occurred_at: Utc::now(),
            correlation_id,
            traceparent: None,
            data,
        }
    }

    /// Continues `trace` (the cause's context), as the next hop of it.
    pub fn traced(self, trace: Option<&TraceParent>) -> Self {
        Self {
            traceparent: trace.map(TraceParent::child),
            ..self
        }
    }
}

/// `booking.confirmed`, `booking.changed` and `booking.cancelled`: the booking as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingData {
    pub booking_id: BookingId,
    pub source: String,
    pub space_id: SpaceId,
    pub location_id: LocationId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: BookingStatus,
    pub patron: Patron,
    pub revision: Option<i64>,
    /// The time zone of the space's location.
    pub time_zone: TimeZone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinReason {
    New,
    Reissued,
    Changed,
}

/// `pin.issued`: everything the patron's email needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinIssuedData {
    pub booking_id: BookingId,
    pub patron: Patron,
    pub space_id: SpaceId,
    pub space_name: String,
    pub location_name: String,
    pub lock_id: LockId,
    pub pin: Pin,
    pub booking_starts_at: DateTime<Utc>,
    pub booking_ends_at: DateTime<Utc>,
    /// When the PIN works, in UTC …
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// … and as the lock reads it: wall-clock time in `time_zone`, without an offset.
    pub local_valid_from: NaiveDateTime,
    pub local_valid_until: NaiveDateTime,
    pub time_zone: TimeZone,
    /// 1 for the first PIN of a booking, then +1 per reissue or change.
    pub pin_version: i32,
    pub reason: PinReason,
}

/// `pin.failed`: a booking that should have a PIN and will not get one without staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinFailedData {
    pub booking_id: BookingId,
    pub lock_id: Option<LockId>,
    /// Absent only when the booking itself could not be read.
    pub booking_starts_at: Option<DateTime<Utc>>,
    /// Why, in words staff can act on.
    pub error: String,
}

/// `pin.revoked`: the booking's PIN no longer opens the door.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinRevokedData {
    pub booking_id: BookingId,
    pub lock_id: LockId,
    pub pin_version: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_serialize_as_their_routing_keys() {
        for event_type in EventType::ALL {
            assert_eq!(
                serde_json::to_value(event_type).unwrap(),
                serde_json::Value::String(event_type.as_str().to_owned())
            );
        }
    }
}
