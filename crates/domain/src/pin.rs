use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A door PIN. Its `Debug` and `Display` hide the digits so a PIN never lands in a log;
/// `expose` is the one way to read it, for the RemoteLock call and the patron's email.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pin(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("a PIN has only digits")]
    NotDigits,
    #[error("a PIN has {min} to {max} digits")]
    Length { min: usize, max: usize },
}

impl Pin {
    /// Keypads take 4 to 10 digits (remotelock-api.md §3.5).
    pub const MIN_DIGITS: usize = 4;
    pub const MAX_DIGITS: usize = 10;

    pub fn parse(value: impl Into<String>) -> Result<Self, PinError> {
        let value = value.into();
        if !value.chars().all(|c| c.is_ascii_digit()) {
            return Err(PinError::NotDigits);
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&value.len()) {
            return Err(PinError::Length {
                min: Self::MIN_DIGITS,
                max: Self::MAX_DIGITS,
            });
        }
        Ok(Self(value))
    }

    /// A random PIN that RemoteLock's rules will not refuse: no run of ascending or
    /// descending digits and not one digit repeated.
    pub fn generate(digits: usize, rng: &mut impl Rng) -> Self {
        let digits = digits.clamp(Self::MIN_DIGITS, Self::MAX_DIGITS);
        loop {
            let candidate: String = (0..digits)
                .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
                .collect();
            if !is_guessable(&candidate) {
                return Self(candidate);
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn is_guessable(pin: &str) -> bool {
    let bytes = pin.as_bytes();
    let steps: Vec<i16> = bytes
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    let constant_step = steps.windows(2).all(|w| w[0] == w[1]);
    constant_step && matches!(steps.first(), Some(-1..=1))
}

impl TryFrom<String> for Pin {
    type Error = PinError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Pin> for String {
    fn from(pin: Pin) -> String {
        pin.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_digits_and_length() {
        assert_eq!(Pin::parse("12a4"), Err(PinError::NotDigits));
        assert_eq!(Pin::parse("123"), Err(PinError::Length { min: 4, max: 10 }));
        assert_eq!(
            Pin::parse("12345678901"),
            Err(PinError::Length { min: 4, max: 10 })
        );
        assert_eq!(Pin::parse("4821").unwrap().expose(), "4821");
    }

    #[test]
    fn guessable_pins_are_recognised() {
        for pin in ["123456", "987654", "111111", "0123"] {
            assert!(is_guessable(pin), "{pin}");
        }
        for pin in ["482193", "112233", "135790"] {
            assert!(!is_guessable(pin), "{pin}");
        }
    }

    #[test]
    fn generated_pins_have_the_asked_length_and_are_not_guessable() {
        let mut rng = rand::thread_rng();
        for _ in 0..1000 {
            let pin = Pin::generate(6, &mut rng);
            assert_eq!(pin.expose().len(), 6);
            assert!(!is_guessable(pin.expose()));
        }
        assert_eq!(Pin::generate(2, &mut rng).expose().len(), 4);
    }

    #[test]
    fn debug_hides_the_digits() {
        assert_eq!(format!("{:?}", Pin::parse("4821").unwrap()), "Pin(****)");
    }
}
