use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("may contain only letters, digits and . _ : -")]
    BadCharacter,
}

const MAX_ID_LEN: usize = 128;

fn check_id(value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { max: MAX_ID_LEN });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

/// Declares an opaque string identifier: validated on construction and on deserialization.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(try_from = "String", into = "String")]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_id(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The upstream booking system's id for a booking.
    BookingId
);
string_id!(SpaceId);
string_id!(LocationId);
string_id!(CategoryId);
string_id!(
    /// A RemoteLock device id.
    LockId
);
string_id!(
    /// A RemoteLock access guest (access person) id.
    GuestId
);
string_id!(
    /// A RemoteLock access grant id (access_person_access).
    AccessId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_long_and_odd_characters() {
        assert_eq!(BookingId::parse(""), Err(IdError::Empty));
        assert_eq!(
            BookingId::parse("a".repeat(129)),
            Err(IdError::TooLong { max: 128 })
        );
        assert_eq!(BookingId::parse("a/b"), Err(IdError::BadCharacter));
        assert_eq!(
            BookingId::parse("lc-123_4:5.6").unwrap().as_str(),
            "lc-123_4:5.6"
        );
    }

    #[test]
    fn ids_validate_when_deserialized() {
        assert!(serde_json::from_str::<SpaceId>("\"sp 101\"").is_err());
        assert_eq!(
            serde_json::from_str::<SpaceId>("\"sp-101\"")
                .unwrap()
                .as_str(),
            "sp-101"
        );
    }
}
