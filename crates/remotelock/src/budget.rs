//! One RemoteLock budget per account (remotelock-api.md §2.6: 120 requests a minute per
//! account, reported in `X-RateLimit-*` on every answer), kept in PostgreSQL
//! (`remotelock_budget`) so every process — each provisioner, the admin — spends the same one.
//!
//! A request is taken before it is sent with one conditional `UPDATE`, so two processes never
//! spend the same last request; every answer sets the row back to what RemoteLock counted when
//! that says less (someone else spent, or a 429). A share of each window is kept for urgent
//! work, and a small reserve for no one. Nothing here waits: a request that does not fit is
//! refused with the moment it may fit, and the caller (a job) is put back in its queue until
//! then, so no worker sits idle while an urgent job waits for a slot.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use sqlx::PgPool;

use crate::error::{RemoteLockError, TransientCause};

/// Whose request goes first when the window runs short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// A PIN that works (or has to work) soon, a door that must close, staff at a screen.
    Urgent,
    /// What can wait for the next window: bookings further ahead, polls.
    Routine,
    /// What no booking waits for: the drift pass comparing RemoteLock with lockbridge. It
    /// spends only what bookings leave of half of each window.
    Background,
}

/// Kept from everyone, for requests of other processes in flight and an answer that has not
/// re-synced the row yet: 2 of 120, so a backlog spends more than 98 % of the window.
const RESERVE_DIVISOR: u32 = 60;
/// Held back from routine work for urgent work: 12 of 120, enough for six PINs a minute
/// (create + grant) however long the backlog behind them.
const URGENT_SHARE_DIVISOR: u32 = 10;
/// Held back from background work for bookings: half of each window (60 of 120), so a drift
/// pass over a large account never delays a booking's own requests.
const BOOKING_SHARE_DIVISOR: u32 = 2;
/// In the window's last seconds routine work may spend the urgent share too: unspent, it
/// would be lost at the reset.
const LATE_RELEASE: chrono::Duration = chrono::Duration::seconds(3);
/// RemoteLock's clock and ours are not the same clock: a window counts as over this long
/// after its reset, so the first request of the next one does not meet the old one.
const CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(1);
/// A window is a minute; a reset further away than this is a bad header, not a reason to
/// stop for longer.
const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(61);
/// Under a high limit a process claims up to limit/600 requests at once and spends them
/// itself, so the shared row is not written for every request; under 1,200 a minute (120 is
/// RemoteLock's), one at a time. Capped so one process never sits on much of a window.
const BATCH_DIVISOR: u32 = 600;
const MAX_BATCH: u32 = 100;
/// Conditional updates that lost to another process's change before the row is read again.
const CLAIM_ATTEMPTS: usize = 4;

/// The account's window: what the `X-RateLimit-*` headers say, or the shared row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Window {
    #[sqlx(rename = "window_limit", try_from = "i32")]
    pub limit: u32,
    #[sqlx(try_from = "i32")]
    pub remaining: u32,
    pub resets_at: DateTime<Utc>,
}

impl Window {
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        Some(Self {
            limit: number("x-ratelimit-limit")?.try_into().ok()?,
            remaining: number("x-ratelimit-remaining")?.try_into().ok()?,
            resets_at: DateTime::from_timestamp(number("x-ratelimit-reset")?.try_into().ok()?, 0)?,
        })
    }

    /// Our clock says RemoteLock's window has reset: what it counted no longer holds.
    fn is_over(&self, now: DateTime<Utc>) -> bool {
        now >= self.resets_at + CLOCK_SLACK
    }

    fn release_at(&self) -> DateTime<Utc> {
        self.resets_at - LATE_RELEASE
    }

    /// Requests `urgency` must leave in the window.
    fn floor(&self, urgency: Urgency, now: DateTime<Utc>) -> u32 {
        let reserve = (self.limit / RESERVE_DIVISOR).max(1);
        match urgency {
            Urgency::Routine if now < self.release_at() => {
                reserve + self.limit / URGENT_SHARE_DIVISOR
            }
            Urgency::Urgent | Urgency::Routine => reserve,
            Urgency::Background => reserve + self.limit / BOOKING_SHARE_DIVISOR,
        }
    }

    /// How many requests to claim from the row for `wanted` of `urgency`: `wanted`, or a batch
    /// if the limit is high and the room is there. `None` when `wanted` does not fit.
    fn claim_size(&self, urgency: Urgency, wanted: u32, now: DateTime<Utc>) -> Option<u32> {
        let room = self.remaining.saturating_sub(self.floor(urgency, now));
        let batch = (self.limit / BATCH_DIVISOR).clamp(1, MAX_BATCH);
        (!self.is_over(now) && room >= wanted).then(|| wanted.max(batch).min(room))
    }

    /// When a request of `urgency` that does not fit now may fit: routine work at the late
    /// release, else at the reset.
    fn next_chance(&self, urgency: Urgency, now: DateTime<Utc>) -> DateTime<Utc> {
        match urgency {
            Urgency::Routine if now < self.release_at() => self.release_at(),
            Urgency::Urgent | Urgency::Routine | Urgency::Background => {
                self.resets_at + CLOCK_SLACK
            }
        }
    }

    /// How long until the window is over, as far as our clock can tell.
    pub fn wait(&self, now: DateTime<Utc>) -> std::time::Duration {
        until(self.resets_at + CLOCK_SLACK, now)
    }

    /// Whether an answer reporting `observed` tells the shared row something: a later
    /// window, or fewer requests left than counted (someone else spent, or a 429). Answers
    /// arrive out of order: an older window, or a higher count of the same one, says nothing.
    fn resyncs(seen: Option<&Self>, observed: &Self) -> bool {
        match seen {
            None => true,
            Some(seen) if observed.resets_at != seen.resets_at => {
                observed.resets_at > seen.resets_at
            }
            // A process with a batch in hand has claimed ahead of what RemoteLock counted.
            Some(seen) => {
                let batch = (seen.limit / BATCH_DIVISOR).clamp(1, MAX_BATCH);
                observed.remaining + (batch - 1) < seen.remaining
            }
        }
    }
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default().min(LONGEST_WAIT)
}

/// Requests taken from the budget and not sent yet, good until their window is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Grant {
    /// `None`: taken while no window was known (sent unchecked, to learn it).
    resets_at: Option<DateTime<Utc>>,
    count: u32,
}

impl Grant {
    fn valid(&self, now: DateTime<Utc>) -> bool {
        self.count > 0 && self.resets_at.is_none_or(|at| now < at + CLOCK_SLACK)
    }

    /// Spends `wanted` of these, if they are still good.
    pub fn spend(&mut self, wanted: u32, now: DateTime<Utc>) -> Option<Grant> {
        if !self.valid(now) || self.count < wanted {
            return None;
        }
        self.count -= wanted;
        Some(Grant {
            count: wanted,
            ..*self
        })
    }

    /// Adds `other` to these; a later window's requests replace an earlier window's. Requests
    /// taken unchecked are not kept: they were for learning the window.
    fn add(&mut self, other: Grant, now: DateTime<Utc>) {
        if !other.valid(now) || other.resets_at.is_none() {
            return;
        }
        if self.valid(now) && self.resets_at == other.resets_at {
            self.count += other.count;
        } else if !self.valid(now) || other.resets_at > self.resets_at {
            *self = other;
        }
    }
}

/// This process's view of the shared budget.
#[derive(Debug, Default)]
struct Local {
    /// The shared row as this process last read or wrote it.
    seen: Option<Window>,
    /// Claimed in a batch, or given back unspent, by urgency.
    urgent: Grant,
    routine: Grant,
    background: Grant,
}

impl Local {
    /// Spends from what this process holds: more urgent work may use less urgent work's
    /// requests (they were claimed under a higher floor), not the other way round.
    fn spend(&mut self, urgency: Urgency, wanted: u32, now: DateTime<Utc>) -> Option<Grant> {
        let from: &[Urgency] = match urgency {
            Urgency::Urgent => &[Urgency::Urgent, Urgency::Routine, Urgency::Background],
            Urgency::Routine => &[Urgency::Routine, Urgency::Background],
            Urgency::Background => &[Urgency::Background],
        };
        from.iter()
            .find_map(|held| self.held(*held).spend(wanted, now))
    }

    fn held(&mut self, urgency: Urgency) -> &mut Grant {
        match urgency {
            Urgency::Urgent => &mut self.urgent,
            Urgency::Routine => &mut self.routine,
            Urgency::Background => &mut self.background,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pool: PgPool,
    local: Arc<Mutex<Local>>,
}

const READ: &str = "SELECT window_limit, remaining, resets_at FROM remotelock_budget
                    WHERE resets_at IS NOT NULL";

impl Budget {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            local: Arc::default(),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().expect("budget state poisoned")
    }

    /// Takes `wanted` requests for `urgency`, or says when they may fit.
    pub async fn take(&self, urgency: Urgency, wanted: u32) -> Result<Grant, RemoteLockError> {
        let now = Utc::now();
        if let Some(grant) = self.local().spend(urgency, wanted, now) {
            return Ok(grant);
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let seen = self.local().seen;
            let window = match seen {
                Some(window) if !window.is_over(now) => window,
                _ => match self.read().await? {
                    Some(window) if !window.is_over(now) => window,
                    // No window known, or it has reset: send, and learn the new one from the
                    // answer.
                    _ => {
                        return Ok(Grant {
                            resets_at: None,
                            count: wanted,
                        });
                    }
                },
            };
            let Some(claim) = window.claim_size(urgency, wanted, now) else {
                // The row only goes down within a window, so a stale view that says no is right.
                return Err(spent(window.next_chance(urgency, now), now));
            };
            if let Some(remaining) = self.claim(&window, claim, urgency, now).await? {
                let mut local = self.local();
                local.seen = Some(Window {
                    remaining,
                    ..window
                });
                let resets_at = Some(window.resets_at);
                local.held(urgency).add(
                    Grant {
                        resets_at,
                        count: claim - wanted,
                    },
                    now,
                );
                return Ok(Grant {
                    resets_at,
                    count: wanted,
                });
            }
            // Another process changed the row (spent it, or re-synced it): look again.
            self.read().await?;
        }
        Err(spent(now + CLOCK_SLACK, now))
    }

    /// The conditional update: takes `claim` requests if the row is still `window` and they
    /// leave its floor. Returns what is left then.
    async fn claim(
        &self,
        window: &Window,
        claim: u32,
        urgency: Urgency,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, RemoteLockError> {
        let remaining: Option<i32> = sqlx::query_scalar(
            "UPDATE remotelock_budget SET remaining = remaining - $1, updated_at = now()
             WHERE window_limit = $2 AND resets_at = $3 AND remaining >= $1 + $4
             RETURNING remaining",
        )
        .bind(to_db(claim))
        .bind(to_db(window.limit))
        .bind(window.resets_at)
        .bind(to_db(window.floor(urgency, now)))
        .fetch_optional(&self.pool)
        .await
        .map_err(RemoteLockError::Storage)?;
        Ok(remaining.map(|left| u32::try_from(left).unwrap_or(0)))
    }

    async fn read(&self) -> Result<Option<Window>, RemoteLockError> {
        let row: Option<Window> = sqlx::query_as(READ)
            .fetch_optional(&self.pool)
            .await
            .map_err(RemoteLockError::Storage)?;
        self.local().seen = row;
        Ok(row)
    }

    /// Requests a piece of work took and did not send: for other work of its urgency here.
    pub fn give_back(&self, urgency: Urgency, grant: Grant) {
        self.local().held(urgency).add(grant, Utc::now());
    }

    /// Re-syncs the shared row from an answer's headers. A 429 means nothing is left, whatever
    /// the headers say. A failure to write is logged: the call itself went through.
    pub async fn observe(&self, headers: &HeaderMap, rate_limited: bool) -> Option<Window> {
        let mut observed = Window::from_headers(headers)?;
        if rate_limited {
            observed.remaining = 0;
        }
        if !Window::resyncs(self.local().seen.as_ref(), &observed) {
            return Some(observed);
        }
        let merged: Result<Option<Window>, sqlx::Error> = sqlx::query_as(
            "UPDATE remotelock_budget SET window_limit = $1,
                 remaining = CASE WHEN resets_at = $3 THEN LEAST(remaining, $2) ELSE $2 END,
                 resets_at = $3, updated_at = now()
             WHERE resets_at IS NULL OR resets_at <= $3
             RETURNING window_limit, remaining, resets_at",
        )
        .bind(to_db(observed.limit))
        .bind(to_db(observed.remaining))
        .bind(observed.resets_at)
        .fetch_optional(&self.pool)
        .await;
        match merged {
            Ok(Some(row)) => self.local().seen = Some(row),
            // The row is in a later window already.
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot re-sync the RemoteLock budget from an answer");
            }
        }
        Some(observed)
    }
}

fn to_db(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

fn spent(next_chance: DateTime<Utc>, now: DateTime<Utc>) -> RemoteLockError {
    RemoteLockError::Transient {
        cause: TransientCause::BudgetSpent,
        retry_after: Some(until(next_chance, now)),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn window(limit: u32, remaining: u32, resets_at: i64) -> Window {
        Window {
            limit,
            remaining,
            resets_at: at(resets_at),
        }
    }

    #[test]
    fn reads_the_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(Window::from_headers(&headers), None);
        for (name, value) in [
            ("x-ratelimit-limit", 120),
            ("x-ratelimit-remaining", 7),
            ("x-ratelimit-reset", 1_060),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
        assert_eq!(Window::from_headers(&headers), Some(window(120, 7, 1_060)));
    }

    #[test]
    fn routine_work_leaves_the_urgent_share_and_everyone_the_reserve() {
        let now = at(1_000);
        // 120 a minute: a reserve of 2, an urgent share of 12.
        assert_eq!(window(120, 50, 1_060).floor(Urgency::Urgent, now), 2);
        assert_eq!(window(120, 50, 1_060).floor(Urgency::Routine, now), 14);
        assert_eq!(
            window(120, 15, 1_060).claim_size(Urgency::Routine, 1, now),
            Some(1)
        );
        assert_eq!(
            window(120, 14, 1_060).claim_size(Urgency::Routine, 1, now),
            None
        );
        assert_eq!(
            window(120, 14, 1_060).claim_size(Urgency::Urgent, 2, now),
            Some(2)
        );
        assert_eq!(
            window(120, 3, 1_060).claim_size(Urgency::Urgent, 2, now),
            None
        );
        // Background work leaves half the window to bookings, on top of the reserve.
        assert_eq!(window(120, 50, 1_060).floor(Urgency::Background, now), 62);
        assert_eq!(
            window(120, 63, 1_060).claim_size(Urgency::Background, 1, now),
            Some(1)
        );
        assert_eq!(
            window(120, 62, 1_060).claim_size(Urgency::Background, 1, now),
            None
        );
        assert_eq!(
            window(120, 62, 1_060).claim_size(Urgency::Routine, 1, now),
            Some(1)
        );
        // A small limit still keeps one request back.
        assert_eq!(window(20, 5, 1_060).floor(Urgency::Urgent, now), 1);
        assert_eq!(window(20, 5, 1_060).floor(Urgency::Routine, now), 3);
    }

    #[test]
    fn routine_work_spends_the_urgent_share_in_the_last_seconds() {
        let spent = window(120, 10, 1_060);
        assert_eq!(spent.claim_size(Urgency::Routine, 2, at(1_056)), None);
        assert_eq!(spent.next_chance(Urgency::Routine, at(1_030)), at(1_057));
        assert_eq!(spent.claim_size(Urgency::Routine, 2, at(1_057)), Some(2));
        // Past the release, and for urgent work, the next chance is the next window.
        assert_eq!(spent.next_chance(Urgency::Routine, at(1_058)), at(1_061));
        assert_eq!(spent.next_chance(Urgency::Urgent, at(1_030)), at(1_061));
        // Background work gets no late release: the next window.
        assert_eq!(spent.claim_size(Urgency::Background, 1, at(1_057)), None);
        assert_eq!(spent.next_chance(Urgency::Background, at(1_030)), at(1_061));
    }

    #[test]
    fn high_limits_claim_batches_and_120_one_at_a_time() {
        let now = at(1_000);
        assert_eq!(
            window(120, 100, 1_060).claim_size(Urgency::Routine, 1, now),
            Some(1)
        );
        assert_eq!(
            window(120, 100, 1_060).claim_size(Urgency::Routine, 2, now),
            Some(2)
        );
        assert_eq!(
            window(6_000, 5_000, 1_060).claim_size(Urgency::Routine, 2, now),
            Some(10)
        );
        assert_eq!(
            window(10_000_000, 9_000_000, 1_060).claim_size(Urgency::Routine, 2, now),
            Some(MAX_BATCH)
        );
        // Never past the floor: what fits, not the whole batch.
        let floor = window(6_000, 0, 1_060).floor(Urgency::Routine, now);
        assert_eq!(
            window(6_000, floor + 4, 1_060).claim_size(Urgency::Routine, 2, now),
            Some(4)
        );
    }

    #[test]
    fn a_window_that_has_reset_is_over_after_the_slack() {
        let counted = window(120, 0, 1_060);
        assert_eq!(counted.claim_size(Urgency::Urgent, 1, at(1_060)), None);
        assert!(!counted.is_over(at(1_060)));
        assert!(counted.is_over(at(1_061)));
        assert_eq!(counted.claim_size(Urgency::Urgent, 1, at(1_061)), None);
        assert_eq!(counted.wait(at(1_000)), std::time::Duration::from_secs(61));
        assert_eq!(counted.wait(at(1_070)), std::time::Duration::ZERO);
        // A bad header does not stop work for longer than a window.
        assert_eq!(window(120, 0, 9_000).wait(at(1_000)), LONGEST_WAIT);
    }

    #[test]
    fn answers_resync_only_with_news() {
        let seen = window(120, 50, 1_060);
        assert!(Window::resyncs(None, &window(120, 119, 1_060)));
        // Someone else spent, or a 429: fewer left.
        assert!(Window::resyncs(Some(&seen), &window(120, 40, 1_060)));
        // Out of order: our own claims were counted ahead of RemoteLock, or an old window.
        assert!(!Window::resyncs(Some(&seen), &window(120, 52, 1_060)));
        assert!(!Window::resyncs(Some(&seen), &window(120, 0, 1_000)));
        // The next window.
        assert!(Window::resyncs(Some(&seen), &window(120, 119, 1_120)));
        // With batches out, a count lower by less than a batch is ours in flight.
        let busy = window(60_000, 50_000, 1_060);
        assert!(!Window::resyncs(
            Some(&busy),
            &window(60_000, 49_950, 1_060)
        ));
        assert!(Window::resyncs(Some(&busy), &window(60_000, 49_000, 1_060)));
    }

    #[test]
    fn grants_are_spent_within_their_window() {
        let now = at(1_000);
        let grant = |count, resets_at| Grant {
            resets_at: Some(at(resets_at)),
            count,
        };
        let mut held = grant(3, 1_060);
        assert_eq!(held.spend(2, now).map(|g| g.count), Some(2));
        assert_eq!(held.spend(2, now), None);
        assert_eq!(held.spend(1, at(1_061)), None, "the window is over");
        held.add(grant(5, 1_120), now);
        assert_eq!(held.count, 5, "a later window's requests replace the old");
        held.add(grant(9, 1_060), now);
        assert_eq!(held.count, 5, "an earlier window's do not");
        held.add(
            Grant {
                resets_at: None,
                count: 4,
            },
            now,
        );
        assert_eq!(held.count, 5, "requests sent unchecked are not kept");
        let mut local = Local {
            routine: held,
            ..Local::default()
        };
        assert!(
            local.spend(Urgency::Urgent, 1, now).is_some(),
            "urgent may use routine's"
        );
        local.urgent = held;
        local.routine = Grant::default();
        assert!(
            local.spend(Urgency::Routine, 1, now).is_none(),
            "not the other way"
        );
        local.background = grant(1, 1_060);
        assert!(
            local.spend(Urgency::Background, 1, now).is_some(),
            "background spends its own"
        );
        assert!(
            local.spend(Urgency::Background, 1, now).is_none(),
            "and nothing else's"
        );
        local.background = grant(1, 1_060);
        assert!(
            local.spend(Urgency::Routine, 1, now).is_some(),
            "routine may use background's"
        );
    }
}
