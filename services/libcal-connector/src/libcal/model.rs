//! LibCal's answers, read as loosely as its API is documented (libcal-api.md): every key but
//! the few a booking cannot do without is optional, ids may come as numbers or strings, and
//! an element of a 200 array may be an `{"error": …}` for an id LibCal does not know.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `GET /1.1/space/locations`.
#[derive(Debug, Deserialize)]
pub struct Location {
    #[serde(deserialize_with = "number")]
    pub lid: u64,
    pub name: String,
}

/// One element of `GET /1.1/space/categories/{lids}`.
#[derive(Debug, Deserialize)]
pub struct LocationCategories {
    #[serde(default, deserialize_with = "optional_number")]
    pub lid: Option<u64>,
    #[serde(default)]
    pub categories: Vec<CategorySummary>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CategorySummary {
    #[serde(deserialize_with = "number")]
    pub cid: u64,
    pub name: String,
}

/// One element of `GET /1.1/space/category/{cids}`: its spaces as bare ids.
#[derive(Debug, Deserialize)]
pub struct CategoryItems {
    #[serde(default, deserialize_with = "optional_number")]
    pub cid: Option<u64>,
    #[serde(default)]
    pub items: Vec<Value>,
    pub error: Option<String>,
}

impl CategoryItems {
    /// Bare ids, or item objects (`details=1`) with an `id`.
    pub fn item_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.items.iter().filter_map(|item| match item {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            Value::Object(o) => o.get("id").and_then(Value::as_u64),
            _ => None,
        })
    }
}

/// One element of `GET /1.1/space/item/{ids}`.
#[derive(Debug, Deserialize)]
pub struct Item {
    #[serde(default, deserialize_with = "optional_number")]
    pub id: Option<u64>,
    pub name: Option<String>,
    /// Absent on old instances: such a space is booked whole.
    #[serde(rename = "isBookableAsWhole", default, deserialize_with = "flag")]
    pub bookable_as_whole: Option<bool>,
    pub error: Option<String>,
}

/// One element of `GET /api/1.1/space/seats/{lid}?spaceId=…`.
#[derive(Debug, Deserialize)]
pub struct Seat {
    #[serde(deserialize_with = "number")]
    pub id: u64,
    pub name: String,
}

/// One row of `GET /1.1/space/bookings` or `/1.1/space/booking/{bookIds}`.
#[derive(Debug, Clone, Deserialize)]
pub struct BookingRow {
    /// Unique per row; a 2020 answer had none (then the row is keyed on what identifies it).
    #[serde(default, deserialize_with = "optional_number")]
    pub id: Option<u64>,
    #[serde(rename = "bookId")]
    pub book_id: String,
    #[serde(deserialize_with = "number")]
    pub eid: u64,
    #[serde(deserialize_with = "number")]
    pub cid: u64,
    #[serde(deserialize_with = "number")]
    pub lid: u64,
    #[serde(default, deserialize_with = "optional_number")]
    pub seat_id: Option<u64>,
    pub seat_name: Option<String>,
    #[serde(rename = "fromDate")]
    pub from_date: String,
    #[serde(rename = "toDate")]
    pub to_date: String,
    #[serde(rename = "firstName")]
    pub first_name: Option<String>,
    #[serde(rename = "lastName")]
    pub last_name: Option<String>,
    pub email: String,
    pub status: String,
    /// When it was cancelled; absent otherwise (null and `false` are read as absent too).
    #[serde(default, deserialize_with = "present_text")]
    pub cancelled: Option<String>,
}

impl BookingRow {
    /// A seat booking names its seat; `0` is read as none.
    pub fn seat(&self) -> Option<u64> {
        self.seat_id.filter(|&seat| seat != 0)
    }
}

/// A number, or a string holding one (clients see both).
fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    optional_number(deserializer)?.ok_or_else(|| serde::de::Error::custom("a number is missing"))
}

fn optional_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("not a whole number")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
        other => Err(serde::de::Error::custom(format!("{other} is not a number"))),
    }
}

/// `true`/`false`, or `1`/`0` as LibCal writes most flags.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(b) => Some(b),
        Value::Number(n) => Some(n.as_u64() != Some(0)),
        Value::String(s) => Some(!matches!(s.as_str(), "" | "0" | "false")),
        _ => None,
    })
}

fn present_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2020_row_without_optional_keys_is_read() {
        // GWU's captured answer (libcal-api.md §4), values invented.
        let row: BookingRow = serde_json::from_str(
            r#"{"bookId":"cs_bGn7kNs2","eid":75464,"cid":19869,"lid":8827,
                "fromDate":"2020-08-31T12:20:00-04:00","toDate":"2020-08-31T14:20:00-04:00",
                "firstName":"A","lastName":"B","email":"a@example.edu",
                "status":"Cancelled by Admin","q12505":"G157911"}"#,
        )
        .unwrap();
        assert_eq!(row.id, None);
        assert_eq!(row.seat(), None);
        assert_eq!(row.cancelled, None);
    }

    #[test]
    fn ids_as_strings_and_empty_optional_values_are_read() {
        let row: BookingRow = serde_json::from_str(
            r#"{"id":"17","bookId":"cs_x","eid":"3","cid":2,"lid":1,"seat_id":0,
                "fromDate":"2026-01-01T10:00:00+00:00","toDate":"2026-01-01T11:00:00+00:00",
                "email":"a@example.edu","status":"Confirmed","cancelled":null}"#,
        )
        .unwrap();
        assert_eq!((row.id, row.eid, row.seat()), (Some(17), 3, None));
        assert_eq!(row.cancelled, None);
    }

    #[test]
    fn a_row_without_a_required_key_is_refused() {
        let missing_email = r#"{"bookId":"cs_x","eid":3,"cid":2,"lid":1,
            "fromDate":"2026-01-01T10:00:00+00:00","toDate":"2026-01-01T11:00:00+00:00",
            "status":"Confirmed"}"#;
        assert!(serde_json::from_str::<BookingRow>(missing_email).is_err());
    }
}
