//! 120 requests per minute per account (remotelock-api.md §2.6). The reset-epoch header
//! implies a fixed window; ours opens with the first request after the previous one ended.
//! Tests may shorten the window (`SimConfig::rate_limit_window`); every window is kept, so a
//! test can tell how much of each one a client spent.
//! The window is counted before the token says which account a request acts on, so every API
//! request (authenticated or not, whatever its account) counts against one shared window.

use std::sync::Mutex;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::state::AppState;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The state of the window as reported in the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    limit: u32,
    remaining: u32,
    /// UTC epoch seconds at which the window ends.
    reset_at: i64,
}

impl Quota {
    /// Sets the headers unless a more specific part of the stack (a fault) already did.
    fn apply_to(self, headers: &mut HeaderMap) {
        for (name, value) in [
            (LIMIT, i64::from(self.limit)),
            (REMAINING, i64::from(self.remaining)),
            (RESET, self.reset_at),
        ] {
            headers.entry(name).or_insert(HeaderValue::from(value));
        }
    }
}

struct Window {
    opened_at: DateTime<Utc>,
    ends_at: i64,
    /// Every request counted in the window, refused ones included.
    used: u32,
}

/// One window as it went: how many requests it admitted and how many it refused with 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitWindow {
    pub opened_at: DateTime<Utc>,
    /// UTC epoch seconds, as in `X-RateLimit-Reset`.
    pub resets_at: i64,
    pub limit: u32,
    pub admitted: u32,
    pub refused: u32,
}

pub struct RateLimiter {
    limit: u32,
    window_secs: i64,
    /// Oldest first; the last one is current until its end.
    windows: Mutex<Vec<Window>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: std::time::Duration) -> Self {
        Self {
            limit,
            window_secs: i64::try_from(window.as_secs()).unwrap_or(i64::MAX).max(1),
            windows: Mutex::new(Vec::new()),
        }
    }

    /// Every window so far, oldest first.
    pub fn history(&self) -> Vec<RateLimitWindow> {
        let windows = self.windows.lock().expect("rate limiter poisoned");
        windows
            .iter()
            .map(|window| {
                let admitted = window.used.min(self.limit);
                RateLimitWindow {
                    opened_at: window.opened_at,
                    resets_at: window.ends_at,
                    limit: self.limit,
                    admitted,
                    refused: window.used - admitted,
                }
            })
            .collect()
    }

    /// Counts one request; the flag says whether it is within the limit.
    fn admit(&self) -> (Quota, bool) {
        self.with_window(|window| {
            window.used = window.used.saturating_add(1);
            window.used <= self.limit
        })
    }

    /// The current window as if it were used up (for the `RateLimit` fault).
    pub fn exhausted(&self) -> Quota {
        let (quota, _) = self.with_window(|_| false);
        Quota {
            remaining: 0,
            ..quota
        }
    }

    fn with_window(&self, update: impl FnOnce(&mut Window) -> bool) -> (Quota, bool) {
        let now = Utc::now();
        let mut windows = self.windows.lock().expect("rate limiter poisoned");
        if windows
            .last()
            .is_none_or(|window| now.timestamp() >= window.ends_at)
        {
            windows.push(Window {
                opened_at: now,
                ends_at: now.timestamp() + self.window_secs,
                used: 0,
            });
        }
        let window = windows.last_mut().expect("just ensured");
        let allowed = update(window);
        let quota = Quota {
            limit: self.limit,
            remaining: self.limit.saturating_sub(window.used),
            reset_at: window.ends_at,
        };
        (quota, allowed)
    }
}

/// The documented 429.
pub fn too_many_requests(quota: Quota) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "message": "Your account has exceeded the rate limit. Check the X-RateLimit-* headers."
        })),
    )
        .into_response();
    quota.apply_to(response.headers_mut());
    response
}

/// Middleware: counts the request and puts the headers on every API response.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (quota, allowed) = state.rate_limiter.admit();
    if !allowed {
        return too_many_requests(quota);
    }
    let mut response = next.run(request).await;
    quota.apply_to(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_then_refuses() {
        let limiter = RateLimiter::new(2, std::time::Duration::from_secs(60));
        let (first, ok1) = limiter.admit();
        let (second, ok2) = limiter.admit();
        let (third, ok3) = limiter.admit();
        assert!(ok1 && ok2 && !ok3);
        assert_eq!(
            (first.remaining, second.remaining, third.remaining),
            (1, 0, 0)
        );
        assert_eq!(first.reset_at, third.reset_at);
        assert!(first.reset_at > Utc::now().timestamp());
        assert_eq!(limiter.exhausted().remaining, 0);
        let history = limiter.history();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].admitted, history[0].refused), (2, 1));
    }
}
