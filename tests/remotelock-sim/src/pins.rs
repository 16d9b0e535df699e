//! PIN rules. Only "string of digits" is documented; the length bounds (config) and
//! account-wide uniqueness among live persons are inferred (README).

use std::ops::RangeInclusive;

use rand::Rng;

/// Length of generated PINs when the configured range allows it.
const GENERATED_DIGITS: usize = 6;
/// Give up generating after this many collisions (only matters for tiny ranges).
const GENERATE_ATTEMPTS: usize = 1_000;

pub struct PinPolicy {
    digits: RangeInclusive<usize>,
}

impl PinPolicy {
    pub fn new(digits: RangeInclusive<usize>) -> Self {
        Self { digits }
    }

    /// `Err` carries the validation message for attribute `pin`.
    pub fn check(&self, pin: &str) -> Result<(), String> {
        if pin.is_empty() || !pin.bytes().all(|b| b.is_ascii_digit()) {
            Err("must contain only digits".to_owned())
        } else if !self.digits.contains(&pin.len()) {
            Err(format!(
                "must be between {} and {} digits long",
                self.digits.start(),
                self.digits.end()
            ))
        } else {
            Ok(())
        }
    }

    /// A random PIN no one holds, or `None` if the space seems exhausted.
    pub fn generate(&self, in_use: impl Fn(&str) -> bool) -> Option<String> {
        let length = GENERATED_DIGITS.clamp(*self.digits.start(), *self.digits.end());
        let mut rng = rand::thread_rng();
        (0..GENERATE_ATTEMPTS)
            .map(|_| {
                (0..length)
                    .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
                    .collect::<String>()
            })
            .find(|pin| !in_use(pin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_digits_and_length() {
        let policy = PinPolicy::new(4..=10);
        assert!(policy.check("0042").is_ok());
        assert!(policy.check("12a4").is_err());
        assert!(policy.check("123").is_err());
        assert!(policy.check("12345678901").is_err());
    }

    #[test]
    fn generates_unused_pins_within_range() {
        let pin = PinPolicy::new(4..=10).generate(|_| false).unwrap();
        assert_eq!(pin.len(), 6);
        // Only PINs starting with 0 are free: found within the attempts all the same.
        let short = PinPolicy::new(4..=4)
            .generate(|p| !p.starts_with('0'))
            .unwrap();
        assert!(short.starts_with('0') && short.len() == 4);
        assert!(PinPolicy::new(4..=4).generate(|_| true).is_none());
    }
}
