//! 120 requests per minute per account (remotelock-api.md §2.6). The reset-epoch header
//! implies a fixed window; ours opens with the first request after the previous one ended.
//! The window is counted before the token says which account a request acts on, so every API
//! request (authenticated or not, whatever its account) counts against one shared window.

use std::sync::Mutex;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use crate::state::AppState;

const WINDOW_SECS: i64 = 60;
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
    ends_at: i64,
    used: u32,
}

pub struct RateLimiter {
    limit: u32,
    window: Mutex<Option<Window>>,
}

impl RateLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            window: Mutex::new(None),
        }
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
        let now = Utc::now().timestamp();
        let mut slot = self.window.lock().expect("rate limiter poisoned");
        let window = match slot.as_mut() {
            Some(window) if now < window.ends_at => window,
            _ => slot.insert(Window {
                ends_at: now + WINDOW_SECS,
                used: 0,
            }),
        };
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
        let limiter = RateLimiter::new(2);
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
    }
}
