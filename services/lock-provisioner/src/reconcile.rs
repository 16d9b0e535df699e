//! The provisioning job: makes RemoteLock match the booking as stored — a guest with a PIN on
//! the linked lock while the booking is confirmed, nothing once it is not.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use lockbridge_domain::{
    BookingId, BookingStatus, GuestId, LockId, LockLocalWindow, Pin, PinState, PinValidity,
    events::{Envelope, EventType, PinFailedData, PinIssuedData, PinReason, PinRevokedData},
};
use lockbridge_remotelock::{
    Access, GuestStatus, GuestUpdate, NewAccessGuest, RemoteLockClient, RemoteLockError, Work,
};
use lockbridge_runtime::{
    jobs::{self, Escalation, Job, JobError, JobHandler},
    outbox,
    telemetry::error_chain,
    wakeup::Channel,
};
use lockbridge_sealing::SealError;
use lockbridge_work::{
    failures::{self, FailureKind, Report, RetryWith},
    provisioning::{self, ProvisionJob},
};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    lock_zones::LockZones,
    pin_choice::{self, ChoiceError, PinChooser},
    plan::{Plan, plan, urgency},
    store::{self, Announced, Booking, LinkedLock, NewGuest, PinRecord},
};

/// RemoteLock shows guest names to staff; keep them readable and bounded.
const MAX_GUEST_NAME: usize = 100;
/// A new guest is a create and a grant, taken from the budget together so a booking is never
/// left with a guest and no door for want of a request.
const NEW_GUEST_REQUESTS: u32 = 2;
/// After a lost answer: the look-up, then an update, the grants read and a grant (or a create
/// and a grant). What is not spent goes back to the process's budget.
const RESUMED_GUEST_REQUESTS: u32 = 4;
/// Moving a guest to another lock: its grants read, and the new grant (revoking the old one
/// is taken when it comes: a door the booking no longer has is not left open for want of it).
const MOVE_REQUESTS: u32 = 2;
/// A 429 without `X-RateLimit-Reset`: wait a window.
const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);

pub(crate) struct Provisioner {
    pub pool: PgPool,
    pub client: RemoteLockClient,
    pub zones: LockZones,
    pub lead_time: Duration,
    pub grace: Duration,
    pub urgent_within: Duration,
    pub pins: PinChooser,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    #[error("database access failed")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    RemoteLock(#[from] RemoteLockError),
    #[error("booking {0} is not stored")]
    BookingMissing(BookingId),
    #[error("the booking's stored PIN cannot be read")]
    Unsealable(#[from] SealError),
    #[error(transparent)]
    NoPin(#[from] ChoiceError),
    #[error(
        "RemoteLock refused {} PINs in a row as already used",
        pin_choice::ATTEMPTS
    )]
    PinsRefused,
    #[error("the booking changed while its guest was being set up; looking at it again")]
    BookingChanged,
}

impl From<ReconcileError> for JobError {
    fn from(error: ReconcileError) -> Self {
        let text = error_chain(&error);
        match &error {
            // The rate limit is not a failure: run again once the window has room.
            ReconcileError::RemoteLock(e) if e.is_rate_limited() => JobError::Deferred {
                until: Utc::now() + e.retry_after().unwrap_or(RATE_LIMIT_WINDOW),
            },
            ReconcileError::Database(_)
            | ReconcileError::NoPin(ChoiceError::Database(_))
            | ReconcileError::PinsRefused => JobError::Transient {
                error: text,
                retry_after: None,
            },
            ReconcileError::BookingChanged => JobError::Transient {
                error: text,
                retry_after: Some(Duration::ZERO),
            },
            ReconcileError::RemoteLock(e) if e.is_transient() => JobError::Transient {
                error: text,
                retry_after: e.retry_after(),
            },
            ReconcileError::RemoteLock(_)
            | ReconcileError::BookingMissing(_)
            | ReconcileError::Unsealable(_)
            | ReconcileError::NoPin(ChoiceError::Exhausted { .. }) => JobError::Permanent(text),
        }
    }
}

impl JobHandler for Provisioner {
    type Payload = ProvisionJob;
    const QUEUE: &'static str = provisioning::QUEUE;

    async fn run(&self, job: &Job<ProvisionJob>) -> Result<(), JobError> {
        let result = self.reconcile(&job.payload.booking_id).await;
        // Whatever the run announced is committed by now: wake this process's relay.
        Channel::outbox(crate::SERVICE).ring();
        if let Err(ReconcileError::RemoteLock(error @ RemoteLockError::NotAuthorized(_))) = &result
        {
            // One alert for the whole account, not one per booking it stops.
            self.report_authorization(error)
                .await
                .map_err(|e| JobError::Transient {
                    error: error_chain(&e),
                    retry_after: None,
                })?;
        }
        Ok(result?)
    }

    async fn escalate(
        &self,
        job: &Job<ProvisionJob>,
        error: &JobError,
    ) -> Result<Escalation, sqlx::Error> {
        let booking_id = &job.payload.booking_id;
        let (booking, record) = store::booking(&self.pool, booking_id)
            .await?
            .map_or((None, None), |(booking, record)| (Some(booking), record));
        let revoking = booking
            .as_ref()
            .is_some_and(|b| plan(b, record.as_ref(), &self.validity(b), Utc::now()).revokes());
        let retry = RetryWith::Job {
            queue: provisioning::QUEUE,
            key: booking_id.as_str(),
        };
        let mut tx = self.pool.begin().await?;
        if revoking {
            let reason = format!(
                "the booking no longer wants a PIN, but its RemoteLock guest could not be \
                 deactivated, so the PIN still opens the door: {error}. lockbridge keeps trying."
            );
            let state = record.as_ref().map_or(PinState::Issued, |r| r.state);
            store::note_error(&mut tx, booking_id, state, &reason).await?;
            failures::report(
                &mut tx,
                Report {
                    kind: FailureKind::PinNotRevoked,
                    booking_id: Some(booking_id),
                    reason: &reason,
                    attempts: job.attempt,
                    retry,
                },
            )
            .await?;
            tx.commit().await?;
            return Ok(Escalation::KeepTrying);
        }
        let correlation_id = booking
            .as_ref()
            .map_or_else(Uuid::now_v7, |b| b.correlation_id);
        let trace = booking.as_ref().and_then(|b| b.traceparent.as_ref());
        store::mark_failed(&mut tx, booking_id, correlation_id, &error.to_string()).await?;
        // While the authorization is gone its own alert says it all.
        if !failures::is_open(&mut *tx, FailureKind::Authorization, None).await? {
            let reason = format!("no PIN could be issued: {error}");
            failures::report(
                &mut tx,
                Report {
                    kind: FailureKind::PinNotIssued,
                    booking_id: Some(booking_id),
                    reason: &reason,
                    attempts: job.attempt,
                    retry,
                },
            )
            .await?;
        }
        let data = PinFailedData {
            booking_id: booking_id.clone(),
            lock_id: booking
                .as_ref()
                .and_then(|b| b.lock.as_ref())
                .map(|l| l.id.clone()),
            booking_starts_at: booking.as_ref().map(|b| b.window.starts_at()),
            error: error.to_string(),
        };
        outbox::enqueue(
            &mut tx,
            crate::SERVICE,
            &Envelope::new(EventType::PinFailed, correlation_id, data).traced(trace),
        )
        .await?;
        tx.commit().await?;
        Ok(Escalation::Stop)
    }
}

impl Provisioner {
    async fn reconcile(&self, booking_id: &BookingId) -> Result<(), ReconcileError> {
        let (booking, record) = store::booking(&self.pool, booking_id)
            .await?
            .ok_or_else(|| ReconcileError::BookingMissing(booking_id.clone()))?;
        jobs::record_booking(
            booking.booking_id.as_str(),
            &booking.correlation_id,
            booking.traceparent.as_ref(),
        );
        let validity = self.validity(&booking);
        let now = Utc::now();
        let work = self
            .client
            .for_work(urgency(&validity, record.as_ref(), self.urgent_within, now))
            .for_booking(&booking.booking_id);
        match plan(&booking, record.as_ref(), &validity, now) {
            Plan::Issue { lock, resumed } => self.issue(&work, &booking, lock, resumed).await,
            Plan::Follow { lock, record } => self.follow(&work, &booking, lock, record).await,
            Plan::Revoke { record } => self.revoke(&work, &booking, record).await,
            Plan::Record { state, detail } => {
                let mut tx = self.pool.begin().await?;
                store::set_state(&mut tx, &booking, state, detail).await?;
                tx.commit().await?;
                Ok(())
            }
            Plan::Nothing => Ok(()),
        }
    }

    async fn report_authorization(&self, error: &RemoteLockError) -> Result<(), sqlx::Error> {
        let reason = format!(
            "{}: no PIN can be issued or revoked until an admin authorizes lockbridge again",
            error_chain(error)
        );
        let mut tx = self.pool.begin().await?;
        failures::report(
            &mut tx,
            Report {
                kind: FailureKind::Authorization,
                booking_id: None,
                reason: &reason,
                attempts: 1,
                retry: RetryWith::Queue(provisioning::QUEUE),
            },
        )
        .await?;
        tx.commit().await
    }

    fn validity(&self, booking: &Booking) -> PinValidity {
        booking.validity(self.lead_time, self.grace)
    }

    async fn local_window(
        &self,
        work: &Work,
        booking: &Booking,
        lock: &LockId,
    ) -> Result<LockLocalWindow, ReconcileError> {
        let zone = match self.zones.zone_of(work, lock).await? {
            Some(zone) => zone,
            None => {
                tracing::warn!(%lock, "lock has no RemoteLock location; using the booking location's time zone");
                booking.location_zone
            }
        };
        Ok(self.validity(booking).in_zone(zone))
    }

    fn guest_name(booking: &Booking) -> String {
        let suffix = format!(" · {}", booking.booking_id);
        let room = MAX_GUEST_NAME.saturating_sub(suffix.chars().count());
        let name: String = booking.patron.name.chars().take(room).collect();
        format!("{name}{suffix}")
    }

    /// Creates the guest (or finds the one a lost answer created), grants the lock, records the
    /// PIN and announces it.
    async fn issue(
        &self,
        work: &Work,
        booking: &Booking,
        lock: &LinkedLock,
        record: Option<&PinRecord>,
    ) -> Result<(), ReconcileError> {
        let window = self.local_window(work, booking, &lock.id).await?;
        let name = Self::guest_name(booking);
        // A previous attempt recorded its intent (a create whose answer may have been lost):
        // find that guest instead of making a second one.
        let resumed = record.filter(|r| r.create_requested_at.is_some());
        // A guest the drift pass found deleted or deactivated by hand (RemoteLock has no way
        // back from deactivated): the new one gets the PIN the patron was told, if it can.
        let replaced = record.filter(|r| r.drift_found_at.is_some());
        work.prepay(match resumed {
            Some(_) => RESUMED_GUEST_REQUESTS,
            None => NEW_GUEST_REQUESTS,
        })
        .await?;
        let found = match resumed {
            Some(r) => self.find_guest(work, r).await?,
            None => None,
        };
        let (guest, pin, access) = match found {
            Some((guest, pin)) => {
                store::record_guest(&self.pool, &booking.booking_id, &guest).await?;
                // The booking may have moved since that attempt, even to another lock.
                let pin = self
                    .set_pin(
                        work,
                        booking,
                        &guest,
                        &lock.id,
                        Some(&window),
                        NewPin::Keep(pin),
                    )
                    .await?;
                let pin = self
                    .grant_only(work, booking, &guest, &lock.id, pin)
                    .await?;
                (guest, pin, None)
            }
            None => {
                let resumed_pin = resumed
                    .or(replaced)
                    .map(|r| r.pin(&self.pins.sealer))
                    .transpose()?
                    .flatten();
                let (guest, pin) = self
                    .create_guest(work, booking, &lock.id, &name, &window, resumed_pin)
                    .await?;
                // A new guest has no grants yet (saves a request of the account's 120 a minute).
                let (access, pin) = match self.grant(work, booking, &guest, &lock.id, pin).await {
                    Ok(granted) => granted,
                    Err(error) => {
                        // Recorded, so the next attempt goes on with this guest instead of
                        // searching RemoteLock for it.
                        store::record_guest(&self.pool, &booking.booking_id, &guest).await?;
                        return Err(error);
                    }
                };
                (guest, pin, Some(access.id))
            }
        };
        tracing::debug!(booking_id = %booking.booking_id, guest_id = %guest, "guest holds the lock");
        // A guest made and granted here is recorded with the announcement, in its transaction:
        // a crash before it leaves the intent recorded, and the next run finds the guest.
        let new_guest = access.as_ref().map(|access| NewGuest {
            guest: &guest,
            lock: &lock.id,
            access,
        });
        self.announce(
            booking,
            lock,
            &pin,
            &window,
            PinReason::New,
            new_guest,
            replaced,
        )
        .await
    }

    /// The guest an earlier, unanswered create may have made: same name, same PIN, active.
    async fn find_guest(
        &self,
        work: &Work,
        record: &PinRecord,
    ) -> Result<Option<(GuestId, Pin)>, ReconcileError> {
        let (Some(name), Some(pin)) = (&record.guest_name, record.pin(&self.pins.sealer)?) else {
            return Ok(None);
        };
        let guests = work.find_access_guests(name).await?;
        Ok(guests
            .into_iter()
            .find(|g| g.status != GuestStatus::Deactivated && g.pin.as_ref() == Some(&pin))
            .map(|g| (g.id, pin)))
    }

    async fn create_guest(
        &self,
        work: &Work,
        booking: &Booking,
        lock: &LockId,
        name: &str,
        window: &LockLocalWindow,
        resumed: Option<Pin>,
    ) -> Result<(GuestId, Pin), ReconcileError> {
        let mut refused = HashSet::new();
        let mut candidate = resumed;
        for _ in 0..pin_choice::ATTEMPTS {
            let mut tx = self.pool.begin().await?;
            let pin = match candidate.take() {
                Some(pin) => pin,
                None => self.choose_pin(&mut tx, booking, lock, &refused).await?,
            };
            store::record_intent(&mut *tx, booking, lock, name, &self.pins.sealer.seal(&pin))
                .await?;
            tx.commit().await?;
            let guest = NewAccessGuest {
                name,
                email: None,
                pin: &pin,
                window,
            };
            match work.create_access_guest(&guest).await {
                Ok(created) => {
                    tracing::info!(booking_id = %booking.booking_id, guest_id = %created.id, %lock, "RemoteLock guest created");
                    // Known before its grant: the lock's confirmation of the grant may come
                    // (by webhook) before this run ends.
                    store::record_guest(&self.pool, &booking.booking_id, &created.id).await?;
                    return Ok((created.id, pin));
                }
                Err(error) if error.is_pin_taken() => {
                    tracing::info!(booking_id = %booking.booking_id, "RemoteLock refused the PIN as already used; choosing another");
                    refused.insert(pin.expose().to_owned());
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ReconcileError::PinsRefused)
    }

    async fn choose_pin(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        booking: &Booking,
        lock: &LockId,
        refused: &HashSet<String>,
    ) -> Result<Pin, ReconcileError> {
        Ok(self.pins.choose(tx, booking, lock, refused).await?)
    }

    /// Sets the guest's PIN as `wanted` says (and its window `window`, if given), or another
    /// PIN when RemoteLock refuses that one. Each PIN is recorded before it is sent, so a lost
    /// answer leaves the record saying which PIN to set again. Returns the PIN the guest now has.
    async fn set_pin(
        &self,
        work: &Work,
        booking: &Booking,
        guest: &GuestId,
        lock: &LockId,
        window: Option<&LockLocalWindow>,
        wanted: NewPin,
    ) -> Result<Pin, ReconcileError> {
        let (mut candidate, mut refused) = match wanted {
            NewPin::Keep(pin) => (Some(pin), HashSet::new()),
            NewPin::Replacing(old) => (None, HashSet::from([old.expose().to_owned()])),
        };
        for _ in 0..pin_choice::ATTEMPTS {
            let mut tx = self.pool.begin().await?;
            let pin = match candidate.take() {
                Some(pin) => pin,
                None => self.choose_pin(&mut tx, booking, lock, &refused).await?,
            };
            store::record_pin(&mut *tx, &booking.booking_id, &self.pins.sealer.seal(&pin)).await?;
            tx.commit().await?;
            let update = GuestUpdate {
                window,
                pin: Some(&pin),
            };
            match work.update_access_guest(guest, &update).await {
                Ok(_) => return Ok(pin),
                Err(error) if error.is_pin_taken() => {
                    tracing::info!(booking_id = %booking.booking_id, "RemoteLock refused the new PIN as already used; choosing another");
                    refused.insert(pin.expose().to_owned());
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ReconcileError::PinsRefused)
    }

    /// Grants the guest `lock`. A grant RemoteLock refuses because the PIN is already used on
    /// that lock gives the guest another PIN first. Returns the access and the PIN the guest
    /// holds the lock with.
    async fn grant(
        &self,
        work: &Work,
        booking: &Booking,
        guest: &GuestId,
        lock: &LockId,
        mut pin: Pin,
    ) -> Result<(Access, Pin), ReconcileError> {
        for _ in 0..pin_choice::ATTEMPTS {
            match work.grant_lock(guest, lock).await {
                Ok(access) => return Ok((access, pin)),
                Err(error) if error.is_pin_taken() => {
                    tracing::info!(booking_id = %booking.booking_id, "RemoteLock refused the grant: the PIN is already used on the lock; changing it");
                    pin = self
                        .set_pin(work, booking, guest, lock, None, NewPin::Replacing(pin))
                        .await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ReconcileError::PinsRefused)
    }

    /// Makes `lock` the guest's only grant: grants it if missing, revokes any other (a booking
    /// moved to another room's lock), and records it. Returns the guest's PIN.
    async fn grant_only(
        &self,
        work: &Work,
        booking: &Booking,
        guest: &GuestId,
        lock: &LockId,
        pin: Pin,
    ) -> Result<Pin, ReconcileError> {
        let accesses = work.accesses(guest).await?;
        let (access, pin) = match accesses.iter().find(|a| &a.accessible_id == lock) {
            Some(access) => (access.clone(), pin),
            None => self.grant(work, booking, guest, lock, pin).await?,
        };
        for old in accesses.iter().filter(|a| &a.accessible_id != lock) {
            ignore_not_found(work.revoke_access(guest, &old.id).await)?;
        }
        store::record_access(&self.pool, &booking.booking_id, lock, &access.id).await?;
        Ok(pin)
    }

    /// A guest the booking already holds: keep its PIN (unless staff asked for a new one),
    /// move its window or lock when the booking moved, tell a corrected patron again, and
    /// settle a record an earlier failure left unfinished. Writes nothing when nothing changed.
    async fn follow(
        &self,
        work: &Work,
        booking: &Booking,
        lock: &LinkedLock,
        record: &PinRecord,
    ) -> Result<(), ReconcileError> {
        let validity = self.validity(booking);
        // Drift found the guest changed by hand: what the record says is not what RemoteLock
        // has, so it is set again as recorded, as after a lost answer.
        let drifted = record.drift_found_at.is_some();
        let settled = record.state == PinState::Issued && !drifted;
        let window_moved = record.valid_from != Some(validity.valid_from)
            || record.valid_until != Some(validity.valid_until);
        let lock_moved = record.lock_id.as_ref() != Some(&lock.id);
        let reissue = record.reissue_requested_at.is_some();
        let resync = record.resync_requested_at.is_some();
        // Records from before patrons were recorded have none: nothing to compare with.
        let patron_changed = record.patron_email.as_ref().is_some_and(|email| {
            email != &booking.patron.email
                || record.patron_name.as_ref() != Some(&booking.patron.name)
        });
        let unchanged = settled && !window_moved && !lock_moved && !reissue && !patron_changed;
        if unchanged && !resync {
            failures::resolve(
                &self.pool,
                FailureKind::PinNotIssued,
                Some(&booking.booking_id),
            )
            .await?;
            return Ok(());
        }
        let (Some(guest), Some(mut pin)) = (&record.guest_id, record.pin(&self.pins.sealer)?)
        else {
            return self.issue(work, booking, lock, Some(record)).await;
        };
        if unchanged {
            // Only the lock failed to take the PIN: grant the access anew, which makes the
            // lock sync the guest again, same PIN, no email.
            return self.resend(work, booking, guest, lock, pin).await;
        }
        let window = self.local_window(work, booking, &lock.id).await?;
        let updates = u32::from(reissue || !settled || window_moved);
        let moves = if lock_moved || !settled {
            MOVE_REQUESTS
        } else {
            0
        };
        work.prepay(updates + moves).await?;
        if reissue || !settled {
            // A reissue wants another PIN; an unsettled record's PIN may have been mid-change
            // when an answer was lost: set it as recorded.
            let wanted = if reissue {
                NewPin::Replacing(pin)
            } else {
                NewPin::Keep(pin)
            };
            pin = self
                .set_pin(work, booking, guest, &lock.id, Some(&window), wanted)
                .await?;
        } else if window_moved {
            let update = GuestUpdate {
                window: Some(&window),
                pin: None,
            };
            store::sending(&self.pool, &booking.booking_id).await?;
            work.update_access_guest(guest, &update).await?;
        }
        if lock_moved || !settled {
            store::sending(&self.pool, &booking.booking_id).await?;
            pin = self.grant_only(work, booking, guest, &lock.id, pin).await?;
        }
        let reason = if reissue {
            PinReason::Reissued
        } else {
            PinReason::Changed
        };
        let drift = drifted.then_some(record);
        self.announce(booking, lock, &pin, &window, reason, None, drift)
            .await
    }

    /// Sends the guest's PIN to the lock again after a sync that failed: the access on the lock
    /// is revoked and granted anew (the grant is what makes a lock sync a person).
    async fn resend(
        &self,
        work: &Work,
        booking: &Booking,
        guest: &GuestId,
        linked: &LinkedLock,
        pin: Pin,
    ) -> Result<(), ReconcileError> {
        let lock = &linked.id;
        work.prepay(MOVE_REQUESTS + 1).await?;
        store::sending(&self.pool, &booking.booking_id).await?;
        let accesses = work.accesses(guest).await?;
        for old in accesses.iter().filter(|a| &a.accessible_id == lock) {
            ignore_not_found(work.revoke_access(guest, &old.id).await)?;
        }
        let (access, granted) = self.grant(work, booking, guest, lock, pin.clone()).await?;
        store::record_access(&self.pool, &booking.booking_id, lock, &access.id).await?;
        store::resent(&self.pool, &booking.booking_id).await?;
        if granted != pin {
            // RemoteLock refused the PIN on the grant this time: the patron needs the new one.
            let window = self.local_window(work, booking, lock).await?;
            return self
                .announce(
                    booking,
                    linked,
                    &granted,
                    &window,
                    PinReason::Changed,
                    None,
                    None,
                )
                .await;
        }
        let mut tx = self.pool.begin().await?;
        store::history(
            &mut tx,
            &booking.booking_id,
            PinState::Issued,
            &format!("PIN sent to lock {lock} again (access granted anew)"),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(booking_id = %booking.booking_id, %lock, "PIN sent to the lock again");
        Ok(())
    }

    /// Records the PIN as issued and publishes `pin.issued`, in one transaction — unless the
    /// booking changed meanwhile (a cancel that arrived while the guest was being made): then
    /// the run starts over from the booking as it is now, and the patron gets no PIN email.
    /// A drift repair (`drift`: the record as the drift pass left it) that gave the guest back
    /// the PIN and window the patron was told publishes nothing: the email they have holds.
    #[allow(clippy::too_many_arguments)]
    async fn announce(
        &self,
        booking: &Booking,
        lock: &LinkedLock,
        pin: &Pin,
        window: &LockLocalWindow,
        reason: PinReason,
        new_guest: Option<NewGuest<'_>>,
        drift: Option<&PinRecord>,
    ) -> Result<(), ReconcileError> {
        let validity = self.validity(booking);
        let told = drift
            .map(|r| r.pin(&self.pins.sealer))
            .transpose()?
            .flatten();
        let announced = match drift {
            Some(r)
                if r.pin_version > 0
                    && told.as_ref() == Some(pin)
                    && r.valid_from == Some(validity.valid_from)
                    && r.valid_until == Some(validity.valid_until)
                    && r.patron_email.as_ref() == Some(&booking.patron.email)
                    && r.patron_name.as_ref() == Some(&booking.patron.name) =>
            {
                Announced::Unchanged
            }
            _ => Announced::NewVersion,
        };
        let mut tx = self.pool.begin().await?;
        if !store::still_as_read(&mut tx, booking).await? {
            drop(tx);
            if let Some(made) = &new_guest {
                // The run starting over must know the guest it has to follow or revoke.
                store::record_guest(&self.pool, &booking.booking_id, made.guest).await?;
                store::record_access(&self.pool, &booking.booking_id, made.lock, made.access)
                    .await?;
            }
            return Err(ReconcileError::BookingChanged);
        }
        let what = match (announced, reason) {
            (Announced::Unchanged, _) => "set back after drift, as the patron was told (no email)",
            (Announced::NewVersion, PinReason::New) => "issued",
            (Announced::NewVersion, PinReason::Reissued) => "reissued",
            (Announced::NewVersion, PinReason::Changed) => "changed",
        };
        let detail = format!(
            "PIN {what} on lock {} ({}), valid {} to {} {}",
            lock.name,
            lock.id,
            window.remotelock_starts_at(),
            window.remotelock_ends_at(),
            window.time_zone
        );
        let version = store::mark_issued(
            &mut tx,
            booking,
            &validity,
            window.time_zone,
            new_guest.as_ref(),
            (&detail, announced),
        )
        .await?;
        if announced == Announced::Unchanged {
            tx.commit().await?;
            tracing::info!(booking_id = %booking.booking_id, "{detail}");
            return Ok(());
        }
        let data = PinIssuedData {
            booking_id: booking.booking_id.clone(),
            patron: booking.patron.clone(),
            space_id: booking.space_id.clone(),
            space_name: booking.space_name.clone(),
            location_name: booking.location_name.clone(),
            lock_id: lock.id.clone(),
            pin: pin.clone(),
            booking_starts_at: booking.window.starts_at(),
            booking_ends_at: booking.window.ends_at(),
            valid_from: validity.valid_from,
            valid_until: validity.valid_until,
            local_valid_from: window.starts_at,
            local_valid_until: window.ends_at,
            time_zone: window.time_zone,
            pin_version: version,
            // The first PIN a patron hears of is new, whatever led to it.
            reason: if version == 1 { PinReason::New } else { reason },
        };
        outbox::enqueue_sealed(
            &mut tx,
            crate::SERVICE,
            &Envelope::new(EventType::PinIssued, booking.correlation_id, data)
                .traced(booking.traceparent.as_ref()),
            &self.pins.sealer,
        )
        .await?;
        tx.commit().await?;
        if version == 1 {
            let since_intake = (Utc::now() - booking.stored_at)
                .to_std()
                .unwrap_or_default();
            metrics::histogram!("lockbridge_intake_to_pin_seconds")
                .record(since_intake.as_secs_f64());
        }
        tracing::info!(booking_id = %booking.booking_id, pin_version = version, "{detail}");
        Ok(())
    }

    /// The booking no longer wants a PIN: deactivate its guest (RemoteLock keeps the history),
    /// or every guest an unanswered create may have made. A guest whose window has already
    /// run out opens nothing, and RemoteLock may refuse to touch it: no call.
    async fn revoke(
        &self,
        work: &Work,
        booking: &Booking,
        record: &PinRecord,
    ) -> Result<(), ReconcileError> {
        let ran_out = record.state == PinState::Issued
            && record.valid_until.is_some_and(|until| until <= Utc::now());
        // Only the drift pass sends a revoked PIN here: its guest was made active again by hand.
        let again = record.state == PinState::Revoked;
        match (&record.guest_id, &record.guest_name) {
            _ if ran_out => {}
            (Some(guest), _) => ignore_not_found(work.deactivate_access_guest(guest).await)?,
            (None, Some(name)) => {
                for guest in work.find_access_guests(name).await? {
                    if guest.status != GuestStatus::Deactivated {
                        ignore_not_found(work.deactivate_access_guest(&guest.id).await)?;
                    }
                }
            }
            (None, None) => {}
        }
        let detail = match (booking.status, &booking.lock) {
            _ if again => {
                "drift repaired: the guest was active again in RemoteLock; deactivated again"
            }
            _ if ran_out => "booking no longer wants a PIN; its window had already ended",
            (BookingStatus::Cancelled, _) => "booking cancelled: guest deactivated",
            (BookingStatus::Confirmed, None) => {
                "booking moved to a space without a lock: guest deactivated"
            }
            (BookingStatus::Confirmed, Some(_)) => {
                "booking moved into the past: guest deactivated, it must not open at the old times"
            }
            _ => "booking no longer confirmed: guest deactivated",
        };
        let mut tx = self.pool.begin().await?;
        store::set_state(&mut tx, booking, PinState::Revoked, detail).await?;
        failures::resolve(
            &mut *tx,
            FailureKind::PinNotRevoked,
            Some(&booking.booking_id),
        )
        .await?;
        // Only a PIN the patron was told about is announced as revoked, and only once.
        if let (Some(lock_id), true) = (record.lock_id.clone(), record.pin_version > 0 && !again) {
            let data = PinRevokedData {
                booking_id: booking.booking_id.clone(),
                lock_id,
                pin_version: record.pin_version,
            };
            outbox::enqueue(
                &mut tx,
                crate::SERVICE,
                &Envelope::new(EventType::PinRevoked, booking.correlation_id, data)
                    .traced(booking.traceparent.as_ref()),
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(booking_id = %booking.booking_id, "{detail}");
        Ok(())
    }
}

/// What PIN a guest is to get.
enum NewPin {
    /// This one: it is what the record says (and the patron may have been told).
    Keep(Pin),
    /// A fresh one, never the one it replaces (a reissue, or one RemoteLock refused).
    Replacing(Pin),
}

/// Something already gone is what we wanted.
fn ignore_not_found(result: Result<(), RemoteLockError>) -> Result<(), RemoteLockError> {
    match result {
        Err(RemoteLockError::NotFound { .. }) => Ok(()),
        other => other,
    }
}
