//! What the pass does about drift. It repairs nothing in RemoteLock itself: it marks the
//! record (`drift_found_at`), notes what it found in the booking's history and queues the
//! booking's provisioning job, which then looks at the guest rather than trust the record
//! (reconcile.rs). What is not lockbridge's to repair — a lock gone from the account — is
//! reported to staff. Each write holds only while the record is as the pass read it.

use lockbridge_domain::LockId;
use lockbridge_work::{
    failures::{self, FailureKind, Report, RetryWith},
    provisioning,
};
use sqlx::PgPool;

use super::{believed::Believed, compare::DriftKind};
use crate::store;

/// Marks the record and queues its provisioning job; `false` when a run changed the record
/// since the pass read it (that run had the last word; the next pass looks again).
pub(crate) async fn queue(
    pool: &PgPool,
    believed: &Believed,
    kinds: &[DriftKind],
) -> Result<bool, sqlx::Error> {
    let guest_gone = kinds.iter().any(|k| k.guest_gone());
    let mut tx = pool.begin().await?;
    // A guest that is gone for good is forgotten: the job makes a new one.
    let state = sqlx::query_scalar(
        "UPDATE booking_pins SET drift_found_at = now(), updated_at = now(),
             guest_id = CASE WHEN $3 THEN NULL ELSE guest_id END,
             access_id = CASE WHEN $3 THEN NULL ELSE access_id END
         WHERE booking_id = $1 AND updated_at = $2 AND drift_found_at IS NULL
         RETURNING state",
    )
    .bind(&believed.booking_id)
    .bind(believed.updated_at)
    .bind(guest_gone)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(state) = state else {
        return Ok(false);
    };
    let detail = format!(
        "drift: {} (guest {}); provisioning again to repair it",
        said(kinds),
        believed.guest_id
    );
    store::history(&mut tx, &believed.booking_id, state, &detail).await?;
    provisioning::request(&mut tx, &believed.booking_id, &believed.window).await?;
    // The pass may run in `lockbridge reconcile`, not in a provisioner.
    provisioning::channel().notify(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// The booking's lock left the account: its PIN opens nothing, and only staff can give the
/// space a lock again. Marks the PIN failed and opens a `pin_not_issued` failure (resolved
/// when a PIN is issued again); `false` when the record changed since it was read.
pub(crate) async fn report_lock_gone(
    pool: &PgPool,
    believed: &Believed,
    lock: &LockId,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let unchanged: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM booking_pins WHERE booking_id = $1 AND updated_at = $2 FOR UPDATE",
    )
    .bind(&believed.booking_id)
    .bind(believed.updated_at)
    .fetch_optional(&mut *tx)
    .await?;
    if unchanged.is_none() {
        return Ok(false);
    }
    let reason = format!(
        "drift: {} ({lock}), so this booking's PIN opens nothing: link its space to a lock \
         again and it gets a PIN there",
        DriftKind::LockGone.explain()
    );
    store::mark_failed(
        &mut tx,
        &believed.booking_id,
        believed.correlation_id,
        &reason,
    )
    .await?;
    failures::report(
        &mut tx,
        Report {
            kind: FailureKind::PinNotIssued,
            booking_id: Some(&believed.booking_id),
            reason: &reason,
            attempts: 1,
            retry: RetryWith::Job {
                queue: provisioning::QUEUE,
                key: believed.booking_id.as_str(),
            },
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// "the guest's window was changed in RemoteLock, the guest's PIN was changed in RemoteLock".
pub(crate) fn said(kinds: &[DriftKind]) -> String {
    kinds
        .iter()
        .map(|k| k.explain())
        .collect::<Vec<_>>()
        .join(", ")
}
