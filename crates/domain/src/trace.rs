//! W3C Trace Context (`traceparent`), carried from an upstream's request through the events it
//! causes, so a trace begun in the booking system can be followed into lockbridge's logs.
//!
//! lockbridge exports no spans of its own; it keeps the upstream's trace id and marks each hop
//! with a parent id of its own, as an intermediary that takes part in the trace should.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`, lowercase.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent (expected 00-<32 hex>-<16 hex>-<2 hex>, ids not all zero)")]
pub struct TraceParentError;

impl TraceParent {
    /// Parses a `traceparent` header value. A later version is read by its first four fields,
    /// as the specification asks; version `ff` and all-zero ids are invalid.
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        let value = value.trim();
        let mut fields = value.splitn(5, '-');
        let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TraceParentError);
        };
        let rest = fields.next();
        let version = hex::<1>(version).ok_or(TraceParentError)?[0];
        // Version 00 has exactly four fields; a later one may add fields after them.
        let flags = match (version, rest) {
            (0xff, _) | (0, Some(_)) => return Err(TraceParentError),
            _ => hex::<1>(flags).ok_or(TraceParentError)?[0],
        };
        let trace_id = hex::<16>(trace_id).ok_or(TraceParentError)?;
        let parent_id = hex::<8>(parent_id).ok_or(TraceParentError)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return Err(TraceParentError);
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The same trace, with this hop as the parent of what comes next.
    pub fn child(&self) -> Self {
        let mut parent_id = [0; 8];
        parent_id.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        Self { parent_id, ..*self }
    }

    /// The trace id alone, as logs carry it.
    pub fn trace_id(&self) -> String {
        lower_hex(&self.trace_id)
    }
}

/// Exactly `N` bytes written as `2N` lowercase hex digits (uppercase is invalid).
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            lower_hex(&self.trace_id),
            lower_hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl std::str::FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl Serialize for TraceParent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceParent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specifications_example_reads_back_as_it_was_written() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(parent.to_string(), EXAMPLE);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            serde_json::to_string(&parent).unwrap(),
            format!("\"{EXAMPLE}\"")
        );
    }

    #[test]
    fn a_child_keeps_the_trace_and_its_flags_with_a_parent_id_of_its_own() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.parent_id, parent.parent_id);
        assert!(child.to_string().ends_with("-01"));
        assert_eq!(TraceParent::parse(&child.to_string()).unwrap(), child);
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let parent = TraceParent::parse(later).unwrap();
        // What lockbridge sends on is the version it speaks.
        assert_eq!(parent.to_string(), EXAMPLE);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert_eq!(TraceParent::parse(bad), Err(TraceParentError), "{bad:?}");
        }
    }
}
