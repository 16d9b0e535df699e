//! PIN format rules. Only "string of digits" is documented; the length bounds and the refusal
//! of guessable codes (config) are inferred (README). Uniqueness is `pin_conflicts`' job.

use std::ops::RangeInclusive;

use rand::Rng;

/// Length of generated PINs when the configured range allows it.
const GENERATED_DIGITS: usize = 6;
/// Give up generating after this many collisions (only matters for tiny ranges).
const GENERATE_ATTEMPTS: usize = 1_000;

pub struct PinPolicy {
    digits: RangeInclusive<usize>,
    reject_guessable: bool,
}

impl PinPolicy {
    pub fn new(digits: RangeInclusive<usize>, reject_guessable: bool) -> Self {
        Self {
            digits,
            reject_guessable,
        }
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
        } else if self.reject_guessable && is_guessable(pin) {
            Err("is too simple".to_owned())
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
            .find(|pin| self.check(pin).is_ok() && !in_use(pin))
    }
}

/// One digit repeated (1111) or a straight run up or down (1234, 9876); no wrap-around.
fn is_guessable(pin: &str) -> bool {
    let digits = pin.as_bytes();
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|pair| i16::from(pair[1]) - i16::from(pair[0]))
        .collect();
    !steps.is_empty()
        && [0, 1, -1]
            .iter()
            .any(|step| steps.iter().all(|s| s == step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_digits_and_length() {
        let policy = PinPolicy::new(4..=10, true);
        assert!(policy.check("0042").is_ok());
        assert!(policy.check("12a4").is_err());
        assert!(policy.check("123").is_err());
        assert!(policy.check("12345678901").is_err());
    }

    #[test]
    fn refuses_runs_and_repeats_when_asked() {
        let policy = PinPolicy::new(4..=10, true);
        for simple in ["1234", "9876", "1111", "0123456789", "3210"] {
            assert_eq!(
                policy.check(simple),
                Err("is too simple".to_owned()),
                "{simple}"
            );
        }
        for fine in ["1235", "1212", "8901", "1122", "4821"] {
            assert!(policy.check(fine).is_ok(), "{fine}");
        }
        assert!(PinPolicy::new(4..=10, false).check("1234").is_ok());
    }

    #[test]
    fn generates_unused_pins_within_range() {
        let pin = PinPolicy::new(4..=10, true).generate(|_| false).unwrap();
        assert_eq!(pin.len(), 6);
        // Only PINs starting with 0 are free: found within the attempts all the same.
        let short = PinPolicy::new(4..=4, true)
            .generate(|p| !p.starts_with('0'))
            .unwrap();
        assert!(short.starts_with('0') && short.len() == 4);
        assert!(PinPolicy::new(4..=4, true).generate(|_| true).is_none());
    }
}
