//! Pacing under RemoteLock's 120 requests per minute per account (remotelock-api.md §2.6).
//! Every answer reports the account's remaining budget and when the window resets; once the
//! budget is down to a reserve, requests wait for the reset instead of earning a 429. The
//! reserve leaves room for what other processes on the same account have in flight.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::header::HeaderMap;

/// Slack added to every wait: RemoteLock's clock and ours are not the same clock.
const CLOCK_SLACK: Duration = Duration::from_secs(1);
/// The window is one minute; a reset further away than this is a bad header, not a reason
/// to stall for longer.
const LONGEST_WAIT: Duration = Duration::from_secs(61);

/// The `X-RateLimit-*` headers of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitWindow {
    pub limit: u32,
    pub remaining: u32,
    pub resets_at: SystemTime,
}

impl RateLimitWindow {
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        Some(Self {
            limit: number("x-ratelimit-limit")?.try_into().ok()?,
            remaining: number("x-ratelimit-remaining")?.try_into().ok()?,
            resets_at: UNIX_EPOCH + Duration::from_secs(number("x-ratelimit-reset")?),
        })
    }

    /// How long until the window resets, as far as our clock can tell.
    pub fn wait(&self, now: SystemTime) -> Duration {
        let until_reset = self.resets_at.duration_since(now).unwrap_or_default();
        (until_reset + CLOCK_SLACK).min(LONGEST_WAIT)
    }

    /// A twelfth of the window (10 of 120).
    fn reserve(&self) -> u32 {
        (self.limit / 12).max(1)
    }
}

/// The account's budget as last reported, shared by every clone of the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pacer {
    window: Arc<Mutex<Option<RateLimitWindow>>>,
}

impl Pacer {
    /// Returns once a request may be sent, counting it against the budget.
    pub async fn ready(&self) {
        while let Some(wait) = self.take_one(SystemTime::now()) {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "RemoteLock rate limit nearly spent: holding requests until the window resets"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `None` when a request may go now (and is counted), else how long to wait.
    fn take_one(&self, now: SystemTime) -> Option<Duration> {
        let mut window = self.window.lock().expect("rate-limit state poisoned");
        // Nothing reported yet: no reason to wait.
        let current = window.as_mut()?;
        if now >= current.resets_at {
            // A new window: its budget is unknown until the next answer says.
            *window = None;
            return None;
        }
        if current.remaining > current.reserve() {
            // Counted now, so concurrent callers do not all spend the same last requests.
            current.remaining -= 1;
            return None;
        }
        Some(current.wait(now))
    }

    /// Records an answer's headers. Answers can arrive out of order: within one window the
    /// lowest remaining count is the truest.
    pub fn observe(&self, headers: &HeaderMap) -> Option<RateLimitWindow> {
        let observed = RateLimitWindow::from_headers(headers)?;
        let mut window = self.window.lock().expect("rate-limit state poisoned");
        match window.as_mut() {
            Some(current) if current.resets_at == observed.resets_at => {
                current.remaining = current.remaining.min(observed.remaining);
                current.limit = observed.limit;
            }
            Some(current) if current.resets_at > observed.resets_at => {}
            _ => *window = Some(observed),
        }
        Some(observed)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(limit: u32, remaining: u32, reset: SystemTime) -> HeaderMap {
        let epoch = reset.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-limit", u64::from(limit)),
            ("x-ratelimit-remaining", u64::from(remaining)),
            ("x-ratelimit-reset", epoch),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
        headers
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn no_headers_no_pacing() {
        let pacer = Pacer::default();
        assert_eq!(pacer.observe(&HeaderMap::new()), None);
        assert_eq!(pacer.take_one(at(1_000)), None);
    }

    #[test]
    fn holds_at_the_reserve_until_the_reset() {
        let pacer = Pacer::default();
        pacer.observe(&headers(120, 12, at(1_060)));
        // Two requests spend the budget down to the reserve of 10.
        assert_eq!(pacer.take_one(at(1_000)), None);
        assert_eq!(pacer.take_one(at(1_000)), None);
        assert_eq!(pacer.take_one(at(1_000)), Some(Duration::from_secs(61)));
        assert_eq!(pacer.take_one(at(1_050)), Some(Duration::from_secs(11)));
        // Once the window has reset, requests go again.
        assert_eq!(pacer.take_one(at(1_060)), None);
        assert_eq!(pacer.take_one(at(1_060)), None);
    }

    #[test]
    fn a_far_reset_is_capped_at_one_window() {
        let pacer = Pacer::default();
        pacer.observe(&headers(120, 0, at(5_000)));
        assert_eq!(pacer.take_one(at(1_000)), Some(Duration::from_secs(61)));
    }

    #[test]
    fn older_or_higher_reports_do_not_undo_lower_ones() {
        let pacer = Pacer::default();
        pacer.observe(&headers(120, 10, at(1_060)));
        pacer.observe(&headers(120, 50, at(1_060)));
        pacer.observe(&headers(120, 90, at(1_000)));
        assert!(pacer.take_one(at(1_030)).is_some());
        pacer.observe(&headers(120, 119, at(1_120)));
        assert_eq!(pacer.take_one(at(1_061)), None);
    }
}
