//! The `[retention]` section: how long personal data and the pipeline's bookkeeping are kept,
//! and how often the admin looks.

use std::time::Duration;

use serde::Deserialize;

/// What reads only `[retention]` beside the common sections (the command line).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Sections {
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "Written")]
pub struct RetentionSettings {
    /// `retention.days` (design §3.3): a booking's personal data goes this long after it ends.
    pub days: RetentionDays,
    /// Handled event ids, published events and finished jobs go this long after their use.
    pub prune_after: Duration,
    /// How often the admin runs a pass.
    pub interval: Duration,
}

/// Whole days, at least one: a booking's patron is needed until it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays(u32);

impl RetentionDays {
    /// A century: beyond it the setting is a typo, and the cutoff would leave the calendar.
    const MAX: u32 = 36_500;

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn as_duration(self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.0))
    }
}

/// The section as written, before it is judged.
#[derive(Deserialize)]
struct Written {
    days: i64,
    #[serde(with = "humantime_serde")]
    prune_after: Duration,
    #[serde(with = "humantime_serde")]
    interval: Duration,
}

/// Why the section is refused; each names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionSettingError {
    #[error("retention.days must be a whole number of days from 1 to {max}, not {0}", max = RetentionDays::MAX)]
    Days(i64),
    #[error("retention.{0} must be longer than 0s")]
    Zero(&'static str),
}

impl TryFrom<Written> for RetentionSettings {
    type Error = RetentionSettingError;

    fn try_from(written: Written) -> Result<Self, Self::Error> {
        let days = u32::try_from(written.days)
            .ok()
            .filter(|days| (1..=RetentionDays::MAX).contains(days))
            .ok_or(RetentionSettingError::Days(written.days))?;
        // An event id forgotten at once would let every redelivery be handled twice, and an
        // interval of nothing would never let the database rest.
        for (setting, value) in [
            ("prune_after", written.prune_after),
            ("interval", written.interval),
        ] {
            if value.is_zero() {
                return Err(RetentionSettingError::Zero(setting));
            }
        }
        Ok(Self {
            days: RetentionDays(days),
            prune_after: written.prune_after,
            interval: written.interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(days: i64, prune_after: u64, interval: u64) -> Written {
        Written {
            days,
            prune_after: Duration::from_secs(prune_after),
            interval: Duration::from_secs(interval),
        }
    }

    #[test]
    fn days_must_be_at_least_one_and_sane() {
        for days in [0, -3, 36_501] {
            let refused = RetentionSettings::try_from(written(days, 60, 60)).unwrap_err();
            assert_eq!(refused, RetentionSettingError::Days(days));
            assert!(refused.to_string().contains("retention.days"), "{refused}");
        }
        let kept = RetentionSettings::try_from(written(30, 60, 60)).unwrap();
        assert_eq!(kept.days.get(), 30);
        assert_eq!(kept.days.as_duration(), chrono::Duration::days(30));
    }

    #[test]
    fn durations_of_nothing_are_refused_by_name() {
        let refused = RetentionSettings::try_from(written(30, 0, 60)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "retention.prune_after must be longer than 0s"
        );
        let refused = RetentionSettings::try_from(written(30, 60, 0)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "retention.interval must be longer than 0s"
        );
    }
}
