//! The provisioning job: makes RemoteLock match the booking as stored — a guest with a PIN on
//! the linked lock while the booking is confirmed, nothing once it is not.

use std::time::Duration;

use lockbridge_shared::{
    domain::{
        BookingId, BookingStatus, GuestId, LockId, LockLocalWindow, Pin, PinState, PinValidity,
    },
    events::{Envelope, EventType, PinFailedData, PinIssuedData, PinReason, PinRevokedData},
    jobs::{Job, JobError, JobHandler, PROVISION_QUEUE},
    outbox,
    remotelock::{GuestStatus, GuestUpdate, NewAccessGuest, RemoteLockClient, RemoteLockError},
    telemetry::error_chain,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    lock_zones::LockZones,
    store::{self, Booking, LinkedLock, PinRecord},
};

/// The job says only which booking to look at; the booking itself is read when the job runs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProvisionJob {
    pub booking_id: BookingId,
}

/// PIN collisions tolerated in one run before giving the job back to the retry policy.
const PIN_ATTEMPTS: usize = 5;
/// RemoteLock shows guest names to staff; keep them readable and bounded.
const MAX_GUEST_NAME: usize = 100;

pub(crate) struct Provisioner {
    pub pool: PgPool,
    pub client: RemoteLockClient,
    pub zones: LockZones,
    pub lead_time: Duration,
    pub grace: Duration,
    pub pin_digits: usize,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    #[error("database access failed")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    RemoteLock(#[from] RemoteLockError),
    #[error("booking {0} is not stored")]
    BookingMissing(BookingId),
    #[error("RemoteLock refused {PIN_ATTEMPTS} PINs in a row as already taken")]
    PinsExhausted,
}

impl From<ReconcileError> for JobError {
    fn from(error: ReconcileError) -> Self {
        let text = error_chain(&error);
        match &error {
            ReconcileError::Database(_) | ReconcileError::PinsExhausted => JobError::Transient {
                error: text,
                retry_after: None,
            },
            ReconcileError::RemoteLock(e) if e.is_transient() => JobError::Transient {
                error: text,
                retry_after: e.retry_after(),
            },
            ReconcileError::RemoteLock(_) | ReconcileError::BookingMissing(_) => {
                JobError::Permanent(text)
            }
        }
    }
}

impl JobHandler for Provisioner {
    type Payload = ProvisionJob;
    const QUEUE: &'static str = PROVISION_QUEUE;

    async fn run(&self, job: &Job<ProvisionJob>) -> Result<(), JobError> {
        Ok(self.reconcile(&job.payload.booking_id).await?)
    }

    async fn gave_up(&self, job: &Job<ProvisionJob>, error: &JobError) -> Result<(), sqlx::Error> {
        let booking_id = &job.payload.booking_id;
        let booking = store::booking(&self.pool, booking_id).await?;
        let correlation_id = booking
            .as_ref()
            .map_or_else(Uuid::now_v7, |b| b.correlation_id);
        let mut tx = self.pool.begin().await?;
        store::mark_failed(&mut tx, booking_id, correlation_id, &error.to_string()).await?;
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
            &Envelope::new(EventType::PinFailed, correlation_id, data),
        )
        .await?;
        tx.commit().await
    }
}

impl Provisioner {
    async fn reconcile(&self, booking_id: &BookingId) -> Result<(), ReconcileError> {
        let booking = store::booking(&self.pool, booking_id)
            .await?
            .ok_or_else(|| ReconcileError::BookingMissing(booking_id.clone()))?;
        let record = store::pin_record(&self.pool, booking_id).await?;
        // A guest lockbridge made, or may have made (intent recorded), and has not deactivated
        // — whatever state an earlier failure left the record in.
        let holds_guest = record.as_ref().filter(|r| {
            r.state != PinState::Revoked
                && (r.guest_id.is_some() || r.create_requested_at.is_some())
        });
        match (&booking.lock, booking.status, holds_guest) {
            (Some(lock), BookingStatus::Confirmed, Some(held)) if held.guest_id.is_some() => {
                self.follow_change(&booking, lock, held).await
            }
            (Some(lock), BookingStatus::Confirmed, _) => {
                self.issue(&booking, lock, holds_guest).await
            }
            // Unlinking the space leaves existing guests alone; a booking that moved to a space
            // without a lock does not keep the old room's door.
            (None, BookingStatus::Confirmed, Some(held))
                if held.space_id.as_ref() == Some(&booking.space_id) =>
            {
                Ok(())
            }
            (_, _, Some(held)) => self.revoke(&booking, held).await,
            (_, _, None) => self.without_pin(&booking, record.as_ref()).await,
        }
    }

    fn validity(&self, booking: &Booking) -> PinValidity {
        booking.window.pin_validity(self.lead_time, self.grace)
    }

    async fn local_window(
        &self,
        booking: &Booking,
        lock: &LockId,
    ) -> Result<LockLocalWindow, ReconcileError> {
        let zone = match self.zones.zone_of(lock).await? {
            Some(zone) => zone,
            None => {
                tracing::warn!(%lock, "lock has no RemoteLock location; using the booking location's time zone");
                booking.location_zone
            }
        };
        Ok(self.validity(booking).in_zone(zone))
    }

    /// A booking that needs no PIN and holds no guest: record why, once.
    async fn without_pin(
        &self,
        booking: &Booking,
        record: Option<&PinRecord>,
    ) -> Result<(), ReconcileError> {
        if record.is_some_and(|r| r.state == PinState::Revoked) {
            return Ok(());
        }
        let (state, detail) = match (&booking.lock, booking.status) {
            (None, _) => (PinState::NotApplicable, "the space has no lock"),
            (Some(_), BookingStatus::Tentative) => (PinState::Pending, "awaiting confirmation"),
            (Some(_), _) => (PinState::NotApplicable, "the booking is cancelled"),
        };
        if record.is_some_and(|r| r.state == state) {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        store::set_state(&mut tx, booking, state, detail).await?;
        tx.commit().await?;
        Ok(())
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
        booking: &Booking,
        lock: &LinkedLock,
        record: Option<&PinRecord>,
    ) -> Result<(), ReconcileError> {
        let window = self.local_window(booking, &lock.id).await?;
        let name = Self::guest_name(booking);
        // A previous attempt recorded its intent (a create whose answer may have been lost):
        // find that guest instead of making a second one.
        let resumed = record.filter(|r| r.create_requested_at.is_some());
        let found = match resumed {
            Some(r) => self.find_guest(r).await?,
            None => None,
        };
        let (guest, pin) = match found {
            Some((guest, pin)) => {
                // The booking may have moved since that attempt, even to another lock.
                let update = GuestUpdate {
                    window: Some(&window),
                    pin: None,
                };
                self.client.update_access_guest(&guest, &update).await?;
                store::record_guest(&self.pool, &booking.booking_id, &guest).await?;
                self.grant_only(booking, &guest, &lock.id).await?;
                (guest, pin)
            }
            None => {
                let resumed_pin = resumed.and_then(PinRecord::pin);
                let (guest, pin) = self
                    .create_guest(booking, &lock.id, &name, &window, resumed_pin)
                    .await?;
                store::record_guest(&self.pool, &booking.booking_id, &guest).await?;
                // A new guest has no grants yet (saves a request of the account's 120 a minute).
                let access = self.client.grant_lock(&guest, &lock.id).await?;
                store::record_access(&self.pool, &booking.booking_id, &lock.id, &access.id).await?;
                (guest, pin)
            }
        };
        tracing::debug!(booking_id = %booking.booking_id, guest_id = %guest, "guest holds the lock");
        self.announce(booking, lock, &pin, &window, "issued").await
    }

    /// Makes `lock` the guest's only grant: grants it if missing, revokes any other (a booking
    /// moved to another room's lock), and records it.
    async fn grant_only(
        &self,
        booking: &Booking,
        guest: &GuestId,
        lock: &LockId,
    ) -> Result<(), ReconcileError> {
        let accesses = self.client.accesses(guest).await?;
        let access = match accesses.iter().find(|a| &a.accessible_id == lock) {
            Some(access) => access.clone(),
            None => self.client.grant_lock(guest, lock).await?,
        };
        for old in accesses.iter().filter(|a| &a.accessible_id != lock) {
            ignore_not_found(self.client.revoke_access(guest, &old.id).await)?;
        }
        store::record_access(&self.pool, &booking.booking_id, lock, &access.id).await?;
        Ok(())
    }

    /// The guest an earlier, unanswered create may have made: same name, same PIN, active.
    async fn find_guest(
        &self,
        record: &PinRecord,
    ) -> Result<Option<(GuestId, Pin)>, ReconcileError> {
        let (Some(name), Some(pin)) = (&record.guest_name, record.pin()) else {
            return Ok(None);
        };
        let guests = self.client.find_access_guests(name).await?;
        Ok(guests
            .into_iter()
            .find(|g| g.status != GuestStatus::Deactivated && g.pin.as_ref() == Some(&pin))
            .map(|g| (g.id, pin)))
    }

    async fn create_guest(
        &self,
        booking: &Booking,
        lock: &LockId,
        name: &str,
        window: &LockLocalWindow,
        mut pin: Option<Pin>,
    ) -> Result<(GuestId, Pin), ReconcileError> {
        for _ in 0..PIN_ATTEMPTS {
            let candidate = pin
                .take()
                .unwrap_or_else(|| Pin::generate(self.pin_digits, &mut rand::thread_rng()));
            store::record_intent(&self.pool, booking, lock, name, &candidate).await?;
            let guest = NewAccessGuest {
                name,
                email: None,
                pin: &candidate,
                window,
            };
            match self.client.create_access_guest(&guest).await {
                Ok(created) => {
                    tracing::info!(booking_id = %booking.booking_id, guest_id = %created.id, %lock, "RemoteLock guest created");
                    return Ok((created.id, candidate));
                }
                Err(error) if error.is_pin_taken() => {
                    tracing::info!(booking_id = %booking.booking_id, "PIN already taken in RemoteLock; choosing another");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ReconcileError::PinsExhausted)
    }

    /// A guest the booking already holds: keep its PIN, move its window or lock when the booking
    /// moved, and settle a record an earlier failure left unfinished. Writes nothing when
    /// nothing changed.
    async fn follow_change(
        &self,
        booking: &Booking,
        lock: &LinkedLock,
        record: &PinRecord,
    ) -> Result<(), ReconcileError> {
        let validity = self.validity(booking);
        let settled = record.state == PinState::Issued;
        let window_moved = record.valid_from != Some(validity.valid_from)
            || record.valid_until != Some(validity.valid_until);
        let lock_moved = record.lock_id.as_ref() != Some(&lock.id);
        if settled && !window_moved && !lock_moved {
            return Ok(());
        }
        let (Some(guest), Some(pin)) = (&record.guest_id, record.pin()) else {
            return self.issue(booking, lock, Some(record)).await;
        };
        let window = self.local_window(booking, &lock.id).await?;
        if window_moved || !settled {
            let update = GuestUpdate {
                window: Some(&window),
                pin: None,
            };
            self.client.update_access_guest(guest, &update).await?;
        }
        if lock_moved || !settled {
            self.grant_only(booking, guest, &lock.id).await?;
        }
        self.announce(booking, lock, &pin, &window, "changed").await
    }

    /// Records the PIN as issued and publishes `pin.issued`, in one transaction.
    async fn announce(
        &self,
        booking: &Booking,
        lock: &LinkedLock,
        pin: &Pin,
        window: &LockLocalWindow,
        what: &str,
    ) -> Result<(), ReconcileError> {
        let validity = self.validity(booking);
        let mut tx = self.pool.begin().await?;
        let version = store::mark_issued(&mut tx, booking, &validity, window.time_zone).await?;
        let detail = format!(
            "PIN {what} on lock {} ({}), valid {} to {} {}",
            lock.name,
            lock.id,
            window.remotelock_starts_at(),
            window.remotelock_ends_at(),
            window.time_zone
        );
        store::history(&mut tx, &booking.booking_id, PinState::Issued, &detail).await?;
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
            reason: if version == 1 {
                PinReason::New
            } else {
                PinReason::Changed
            },
        };
        outbox::enqueue(
            &mut tx,
            crate::SERVICE,
            &Envelope::new(EventType::PinIssued, booking.correlation_id, data),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(booking_id = %booking.booking_id, pin_version = version, "{detail}");
        Ok(())
    }

    /// The booking no longer wants a PIN: deactivate its guest (RemoteLock keeps the history),
    /// or every guest an unanswered create may have made.
    async fn revoke(&self, booking: &Booking, record: &PinRecord) -> Result<(), ReconcileError> {
        match (&record.guest_id, &record.guest_name) {
            (Some(guest), _) => ignore_not_found(self.client.deactivate_access_guest(guest).await)?,
            (None, Some(name)) => {
                for guest in self.client.find_access_guests(name).await? {
                    if guest.status != GuestStatus::Deactivated {
                        ignore_not_found(self.client.deactivate_access_guest(&guest.id).await)?;
                    }
                }
            }
            (None, None) => {}
        }
        let detail = match (booking.status, &booking.lock) {
            (BookingStatus::Cancelled, _) => "booking cancelled: guest deactivated",
            (BookingStatus::Confirmed, None) => {
                "booking moved to a space without a lock: guest deactivated"
            }
            _ => "booking no longer confirmed: guest deactivated",
        };
        let mut tx = self.pool.begin().await?;
        store::set_state(&mut tx, booking, PinState::Revoked, detail).await?;
        // Only a PIN the patron was told about is announced as revoked.
        if let (Some(lock_id), true) = (record.lock_id.clone(), record.pin_version > 0) {
            let data = PinRevokedData {
                booking_id: booking.booking_id.clone(),
                lock_id,
                pin_version: record.pin_version,
            };
            outbox::enqueue(
                &mut tx,
                crate::SERVICE,
                &Envelope::new(EventType::PinRevoked, booking.correlation_id, data),
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(booking_id = %booking.booking_id, "{detail}");
        Ok(())
    }
}

/// Something already gone is what we wanted.
fn ignore_not_found(result: Result<(), RemoteLockError>) -> Result<(), RemoteLockError> {
    match result {
        Err(RemoteLockError::NotFound { .. }) => Ok(()),
        other => other,
    }
}
