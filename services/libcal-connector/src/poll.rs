//! One poll: every configured location's rows for the window, compared with what the
//! connector last knew, each real difference a new revision for the sender to take to intake.
//!
//! Absence is never enough on its own (issue 7): a row missing from a complete answer is
//! looked up by its bookId first, and cancelled only once `missing_polls_before_cancel`
//! successful polls in a row went without it. A failed call, an incomplete set of pages, or
//! a location answering no rows at all where some were expected counts nothing missing.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use chrono::{Days, Utc};
use lockbridge_runtime::telemetry::error_chain;
use serde_json::Value;
use sqlx::PgPool;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    catalogue::Catalogue,
    configuration::LibcalSettings,
    health::PollHealth,
    intake::Intake,
    libcal::{BookingRow, LibCal, LibcalError},
    mapping::{self, Unusable},
    state::{self, Row},
    window::Window,
};

/// Two connectors against one database take turns: the one holding this lock polls.
const POLL_LOCK: i64 = 0x6c69_6263_616c; // "libcal"
/// A LibCal that ignores `page` would answer the first page forever.
const MAX_PAGES: u32 = 1_000;
/// Rows of bookings this long past are forgotten once intake has them.
const FORGET_AFTER: Days = Days::new(60);

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("LibCal's bookings could not be read for location {lid}")]
    LibCal {
        lid: u64,
        #[source]
        source: LibcalError,
    },
    #[error("LibCal gave location {lid} page after page of the same rows (is `page` ignored?)")]
    Paging { lid: u64 },
    #[error("the connector's database failed")]
    Database(#[from] sqlx::Error),
}

/// What one poll found, for its log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub new: usize,
    pub changed: usize,
    pub cancelled: usize,
    pub unchanged: usize,
    /// Missing this time, not yet for long enough to be cancelled.
    pub missing: usize,
    /// Rows left alone: an unknown status, a time that is no time, cancelled before first seen.
    pub ignored: usize,
}

pub struct Poller {
    pub libcal: LibCal,
    pub intake: Intake,
    pub pool: PgPool,
    pub settings: Arc<LibcalSettings>,
    pub catalogue: Catalogue,
    pub health: Arc<PollHealth>,
    /// Rung after a poll wrote something for intake.
    pub sender: Arc<Notify>,
    /// Set by the sender when intake did not know a booking's space.
    pub catalogue_due: Arc<AtomicBool>,
}

/// The rows of one location, and whether they are all it has in the window.
struct Answer {
    lid: u64,
    rows: Vec<BookingRow>,
    failure: Option<PollError>,
}

impl Poller {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.settings.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut catalogue_synced: Option<Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            // Intake did not know a booking's space: what it was sent is no guide any more.
            let resend = self.catalogue_due.swap(false, Ordering::SeqCst);
            if resend {
                self.catalogue.forget_sent();
            }
            let due = resend
                || catalogue_synced
                    .is_none_or(|at| at.elapsed() >= self.settings.catalogue_interval);
            let started = Instant::now();
            // A poll cut short writes nothing: its one transaction is never committed.
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = self.poll(due) => outcome,
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(Some((counts, synced))) => {
                    self.health.succeeded();
                    if synced {
                        catalogue_synced = Some(Instant::now());
                    }
                    tracing::info!(
                        new = counts.new,
                        changed = counts.changed,
                        cancelled = counts.cancelled,
                        unchanged = counts.unchanged,
                        missing = counts.missing,
                        ignored = counts.ignored,
                        elapsed_ms,
                        "LibCal poll"
                    );
                }
                Ok(None) => tracing::debug!("another connector is polling; skipped"),
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    elapsed_ms,
                    "LibCal poll failed; nothing was counted missing"
                ),
            }
        }
    }

    /// `None`: another connector holds the poll. The bool: the catalogue was synced.
    pub async fn poll(&mut self, catalogue_due: bool) -> Result<Option<(Counts, bool)>, PollError> {
        // Held for the whole poll by a transaction of its own, so a process that dies or a
        // poll that is dropped lets go of it with its connection.
        let mut turn = self.pool.begin().await?;
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(POLL_LOCK)
            .fetch_one(&mut *turn)
            .await?;
        if !ours {
            return Ok(None);
        }
        let mut synced = catalogue_due && self.sync_catalogue().await;
        let window = Window::at(
            Utc::now(),
            self.settings.instance_zone(),
            self.settings.lookahead_days,
        );
        let mut answers = Vec::new();
        for &lid in &self.settings.location_ids {
            answers.push(self.read_location(lid.into(), &window).await);
        }
        let rows = || answers.iter().flat_map(|a| &a.rows);
        if !synced && rows().any(|row| !self.catalogue.has_space_of(row)) {
            synced = self.sync_catalogue().await;
        }
        for row in rows().filter(|r| r.seat().is_some()) {
            if !self.catalogue.has_space_of(row)
                && let Err(error) = self
                    .catalogue
                    .add_seat_of(row, &self.intake, &self.pool)
                    .await
            {
                tracing::warn!(error = %error_chain(&error), "a booked seat could not be sent");
            }
        }
        let lids: Vec<i64> = self
            .settings
            .location_ids
            .iter()
            .map(|&l| l.into())
            .collect();
        let known = state::known(&self.pool, &lids).await?;
        let mut diff = Diff::new(&known, self.settings.missing_polls_before_cancel);
        for row in rows() {
            diff.row(row);
        }
        for answer in &answers {
            if answer.failure.is_none() {
                self.count_missing(answer, &window, &mut diff).await;
            }
        }
        let Diff { writes, counts, .. } = diff;
        state::write(&mut turn, &writes).await?;
        turn.commit().await?;
        if writes.iter().any(|w| {
            known
                .get(&w.booking_id)
                .is_none_or(|k| k.revision != w.revision)
        }) {
            self.sender.notify_one();
        }
        let forgotten = state::forget_before(&self.pool, Utc::now() - FORGET_AFTER).await?;
        if forgotten > 0 {
            tracing::debug!(forgotten, "rows of long-past bookings forgotten");
        }
        match answers.into_iter().find_map(|a| a.failure) {
            Some(failure) => Err(failure),
            None => Ok(Some((counts, synced))),
        }
    }

    /// Whether it worked; a failure is logged and tried again at the next poll.
    async fn sync_catalogue(&mut self) -> bool {
        match self
            .catalogue
            .sync(&self.libcal, &self.intake, &self.pool, &self.settings)
            .await
        {
            Ok(synced) => {
                tracing::info!(
                    written = synced.written,
                    unchanged = synced.unchanged,
                    refused = synced.refused,
                    "LibCal catalogue synced"
                );
                true
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "LibCal catalogue sync failed");
                false
            }
        }
    }

    /// Every page of every span of the window; on a failure, the rows read so far.
    async fn read_location(&self, lid: u64, window: &Window) -> Answer {
        let limit = self.settings.page_size;
        let mut rows = Vec::new();
        let mut failure = None;
        'spans: for span in window.spans() {
            // The first row and the length of the page before, and the most rows a page had.
            let mut previous: Option<(Option<String>, usize)> = None;
            let mut fullest = 0;
            for page in 1..=MAX_PAGES {
                let batch = match self
                    .libcal
                    .bookings_page(lid, span.date, span.days, page, limit)
                    .await
                {
                    Ok(batch) => batch,
                    Err(source) => {
                        failure = Some(PollError::LibCal { lid, source });
                        break 'spans;
                    }
                };
                let first = batch.first().map(mapping::booking_id);
                if let Some((previous_first, previous_len)) = &previous
                    && first.is_some()
                    && first == *previous_first
                {
                    // LibCal ignores `page`: after a short page that is nothing new, the end
                    // [T: PITT]; after a full one, the rest cannot be read.
                    if *previous_len < limit as usize {
                        continue 'spans;
                    }
                    failure = Some(PollError::Paging { lid });
                    break 'spans;
                }
                // Clients stop at a page shorter than `limit` [T], but a LibCal whose own
                // maximum is lower may serve that many instead (libcal-api.md §6 leaves it
                // open): the end is an empty page, or one shorter than an earlier one.
                let last = batch.is_empty() || batch.len() < fullest;
                fullest = fullest.max(batch.len());
                previous = Some((first, batch.len()));
                rows.extend(batch.into_iter().filter(|row| row.lid == lid));
                if last {
                    continue 'spans;
                }
            }
            failure = Some(PollError::Paging { lid });
            break;
        }
        Answer { lid, rows, failure }
    }

    /// Rows of a complete answer that it lacks: looked up by bookId, then counted missing.
    async fn count_missing(&self, answer: &Answer, window: &Window, diff: &mut Diff<'_>) {
        let zone = self.settings.zone_of(answer.lid as u32).tz();
        let absent: Vec<&Row> = diff
            .known
            .values()
            .filter(|k| k.location_id == answer.lid as i64 && !k.cancelled && k.revision > 0)
            .filter(|k| !diff.seen.contains(&k.booking_id))
            .filter(|k| window.expects(k.starts_at.with_timezone(&zone).date_naive()))
            .collect();
        if absent.is_empty() {
            return;
        }
        if answer.rows.is_empty() {
            tracing::warn!(
                lid = answer.lid,
                expected = absent.len(),
                "LibCal answered no bookings at all for a location that has some; \
                 taken as a bad answer, nothing is counted missing"
            );
            return;
        }
        let mut book_ids: Vec<String> = absent.iter().map(|k| k.book_id.clone()).collect();
        book_ids.sort();
        book_ids.dedup();
        match self.libcal.booking_rows(&book_ids).await {
            Ok(found) => {
                // A row moved out of the window, or cancelled: LibCal still has it.
                for row in found.iter().filter(|row| row.lid == answer.lid) {
                    diff.row(row);
                }
            }
            Err(error) => {
                tracing::warn!(
                    lid = answer.lid,
                    error = %error_chain(&error),
                    "missing bookings could not be looked up; nothing is counted missing"
                );
                return;
            }
        }
        let absent: Vec<Row> = absent
            .into_iter()
            .filter(|k| !diff.seen.contains(&k.booking_id))
            .cloned()
            .collect();
        for known in absent {
            diff.missing(known);
        }
    }
}

/// The writes a poll decides on, against what was known before it.
struct Diff<'a> {
    known: &'a HashMap<String, Row>,
    cancel_after: u32,
    seen: HashSet<String>,
    writes: Vec<Row>,
    counts: Counts,
}

impl<'a> Diff<'a> {
    fn new(known: &'a HashMap<String, Row>, cancel_after: u32) -> Self {
        Self {
            known,
            cancel_after,
            seen: HashSet::new(),
            writes: Vec::new(),
            counts: Counts::default(),
        }
    }

    fn row(&mut self, row: &BookingRow) {
        let booking_id = mapping::booking_id(row);
        if !self.seen.insert(booking_id.clone()) {
            return;
        }
        let known = self.known.get(&booking_id);
        let desired = match mapping::desired(row) {
            Ok(desired) => desired,
            Err(unusable) => {
                match unusable {
                    Unusable::UnknownStatus(status) => tracing::warn!(
                        %booking_id, %status,
                        "LibCal gave a status this version does not know; the booking is left as it was"
                    ),
                    Unusable::BadTime(field) => tracing::warn!(
                        %booking_id, field,
                        "LibCal gave a row a time that is not one; the booking is left as it was"
                    ),
                }
                self.counts.ignored += 1;
                if let Some(known) = known.filter(|k| k.missing_polls > 0) {
                    self.writes.push(Row {
                        missing_polls: 0,
                        ..known.clone()
                    });
                }
                return;
            }
        };
        let fresh = Row {
            booking_id,
            book_id: desired.book_id,
            location_id: desired.lid as i64,
            starts_at: desired.starts_at,
            body: desired.body,
            cancelled: desired.cancelled,
            revision: 0,
            missing_polls: 0,
        };
        let Some(known) = known else {
            if fresh.cancelled {
                // Never sent, nothing to revoke: kept only so it is not news next time.
                self.counts.ignored += 1;
                self.writes.push(fresh);
            } else {
                self.counts.new += 1;
                self.writes.push(Row {
                    revision: 1,
                    ..fresh
                });
            }
            return;
        };
        if known.body == fresh.body {
            self.counts.unchanged += 1;
            if known.missing_polls > 0 || known.book_id != fresh.book_id {
                self.writes.push(Row {
                    revision: known.revision,
                    ..fresh
                });
            }
            return;
        }
        let revision = match (known.revision, fresh.cancelled) {
            // Cancelled before intake ever had it, and still: nothing to send.
            (0, true) => 0,
            (revision, _) => revision + 1,
        };
        if fresh.cancelled && !known.cancelled {
            self.counts.cancelled += 1;
        } else if known.revision == 0 && revision > 0 {
            self.counts.new += 1;
        } else {
            self.counts.changed += 1;
        }
        self.writes.push(Row { revision, ..fresh });
    }

    /// A row this complete answer should have had and LibCal no longer has at all.
    fn missing(&mut self, known: Row) {
        let missing_polls = known.missing_polls + 1;
        if missing_polls < self.cancel_after as i32 {
            self.counts.missing += 1;
            self.writes.push(Row {
                missing_polls,
                ..known
            });
            return;
        }
        tracing::info!(
            booking_id = %known.booking_id,
            missing_polls,
            "a booking LibCal no longer has is cancelled"
        );
        let mut body = known.body.clone();
        body["status"] = Value::from("cancelled");
        self.counts.cancelled += 1;
        self.writes.push(Row {
            body,
            cancelled: true,
            revision: known.revision + 1,
            missing_polls: 0,
            ..known
        });
    }
}
