//! Drift repair (issue 10, item 4): a pass that compares what lockbridge believes it left in
//! RemoteLock with what RemoteLock has — guests deleted or deactivated by hand, windows or
//! PINs changed, accesses removed, locks gone from the account — queues the repair of what is
//! lockbridge's (the booking's provisioning job does it), and reports the rest to staff.
//!
//! It reads RemoteLock with as few requests as the API allows (the devices, the records'
//! guests 50 at a time by `id[]`, and each lock's grants), at [`Urgency::Background`]: it
//! never takes a request a booking needs. One pass runs at a time in the whole system, under
//! an advisory lock: every `reconcile.interval` in each provisioner, and on demand from
//! `lockbridge reconcile`.

mod believed;
mod compare;
mod repair;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use lockbridge_domain::{BookingId, GuestId, LockId};
use lockbridge_remotelock::{RemoteLockClient, RemoteLockError, Urgency};
use lockbridge_runtime::{db::SessionLock, telemetry::error_chain};
use lockbridge_sealing::pins::PinSealer;
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use believed::Believed;
pub use believed::ReadError;
pub use compare::DriftKind;
use compare::{Expected, Seen, compare};

/// The session lock one pass holds (`pg_locks.objid` shows it); taken with its connection, so
/// a process that dies lets go.
pub const PASS_LOCK: i64 = 0x0064_7269_6674; // "drift"

/// What lockbridge needs to compare and repair.
#[derive(Clone)]
pub struct DriftPass {
    pub pool: PgPool,
    pub client: RemoteLockClient,
    pub sealer: PinSealer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Queue the repairs and report the rest.
    Repair,
    /// Find only: nothing is written, nothing is queued.
    DryRun,
}

/// What one pass found and did.
#[derive(Debug, Serialize)]
pub struct PassReport {
    /// Records compared with RemoteLock.
    pub checked: usize,
    pub findings: Vec<Finding>,
}

/// Drift on one booking's guest.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub booking_id: BookingId,
    pub guest_id: GuestId,
    pub kinds: Vec<DriftKind>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A dry run: found, nothing done.
    Found,
    /// The booking's provisioning job repairs it.
    RepairQueued,
    /// Not lockbridge's to repair: a failure staff see.
    Reported,
    /// A provisioning run changed the record since the pass read it: it had the last word.
    ChangedMeanwhile,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "found",
            Self::RepairQueued => "repair_queued",
            Self::Reported => "reported",
            Self::ChangedMeanwhile => "changed_meanwhile",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("database access failed")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Records(#[from] ReadError),
    #[error(transparent)]
    RemoteLock(#[from] RemoteLockError),
}

impl DriftPass {
    /// One pass, unless another is running anywhere (`None`).
    pub async fn run_exclusive(&self, mode: Mode) -> Result<Option<PassReport>, DriftError> {
        let Some(lock) = SessionLock::try_take(&self.pool, PASS_LOCK).await? else {
            return Ok(None);
        };
        // The pass runs on connections of its own: the lock's is left clean.
        let passed = self.pass(mode).await;
        lock.release(true).await;
        passed.map(Some)
    }

    /// Every `every`, a pass (the first one `every` after the start), until shut down.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {},
            }
            match self.run_exclusive(Mode::Repair).await {
                Ok(Some(report)) => tracing::info!(
                    checked = report.checked,
                    drifted = report.findings.len(),
                    "drift pass done"
                ),
                Ok(None) => tracing::debug!("another drift pass is running; skipped"),
                // Not authorized, the budget spent, RemoteLock down: the next pass tries
                // again, and the provisioning jobs report what needs a person.
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "drift pass failed")
                }
            }
        }
        tracing::info!("drift pass stopped");
    }

    async fn pass(&self, mode: Mode) -> Result<PassReport, DriftError> {
        let believed = believed::read(&self.pool, &self.sealer).await?;
        let mut report = PassReport {
            checked: believed.len(),
            findings: Vec::new(),
        };
        if believed.is_empty() {
            return Ok(report);
        }
        let seen = self.seen(&believed).await?;
        for record in &believed {
            let kinds = compare(&record.guest_id, &record.expected, &seen);
            if kinds.is_empty() {
                continue;
            }
            let outcome = match mode {
                Mode::DryRun => Outcome::Found,
                Mode::Repair => self.act(record, &kinds).await?,
            };
            for kind in &kinds {
                metrics::counter!("lockbridge_drift_total", "kind" => kind.as_str(), "outcome" => outcome.as_str())
                    .increment(1);
            }
            tracing::info!(booking_id = %record.booking_id, guest_id = %record.guest_id, drift = %repair::said(&kinds), outcome = outcome.as_str(), "drift found");
            report.findings.push(Finding {
                booking_id: record.booking_id.clone(),
                guest_id: record.guest_id.clone(),
                kinds,
                outcome,
            });
        }
        Ok(report)
    }

    async fn act(&self, record: &Believed, kinds: &[DriftKind]) -> Result<Outcome, DriftError> {
        let done = match (&record.expected, kinds) {
            (Expected::Live { lock, .. }, [DriftKind::LockGone]) => {
                repair::report_lock_gone(&self.pool, record, lock).await?
            }
            _ => repair::queue(&self.pool, record, kinds).await?,
        };
        Ok(match (done, kinds) {
            (false, _) => Outcome::ChangedMeanwhile,
            (true, [DriftKind::LockGone]) => Outcome::Reported,
            (true, _) => Outcome::RepairQueued,
        })
    }

    /// RemoteLock's side, in few requests: the account's locks (one page), the records'
    /// guests 50 at a time, and the grants on each lock with a live guest expected.
    async fn seen(&self, believed: &[Believed]) -> Result<Seen, DriftError> {
        let work = self.client.for_work(Urgency::Background);
        let locks: HashSet<LockId> = work.locks().await?.into_iter().map(|d| d.id).collect();
        let ids: Vec<GuestId> = believed
            .iter()
            .map(|b| b.guest_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let guests: HashMap<GuestId, _> = work
            .access_guests(&ids)
            .await?
            .into_iter()
            .map(|g| (g.id.clone(), g))
            .collect();
        let on_locks: BTreeSet<&LockId> = believed
            .iter()
            .filter_map(|b| match &b.expected {
                Expected::Live { lock, .. } if guests.contains_key(&b.guest_id) => Some(lock),
                _ => None,
            })
            .filter(|lock| locks.contains(*lock))
            .collect();
        let mut grants = HashSet::new();
        for lock in on_locks {
            grants.extend(
                work.lock_accesses(lock)
                    .await?
                    .into_iter()
                    .map(|a| (a.access_person_id, lock.clone())),
            );
        }
        Ok(Seen {
            locks,
            guests,
            grants,
        })
    }
}
