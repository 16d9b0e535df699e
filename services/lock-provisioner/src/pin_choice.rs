//! Choosing a door PIN RemoteLock will take: never one lockbridge knows to be live on the same
//! lock, and, when RemoteLock refuses one anyway (its uniqueness scope, account or device, is
//! not documented, and a clash may surface at create, update or grant), another.

use std::collections::HashSet;

use lockbridge_domain::{LockId, Pin};
use lockbridge_sealing::pins::PinSealer;
use sqlx::{Postgres, Transaction};

use crate::store::{self, Booking};

/// PINs RemoteLock may refuse in one run before the job backs off and tries later.
pub(crate) const ATTEMPTS: usize = 8;
/// Random draws before concluding the lock has no free PIN of this length.
const DRAWS: usize = 10_000;
/// Draws checked against the database at once.
const CANDIDATES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ChoiceError {
    #[error("database access failed")]
    Database(#[from] sqlx::Error),
    #[error(
        "every {digits}-digit PIN lockbridge could draw is already live on lock {lock}: \
         raise provisioner.pin_digits or the PIN length on the Settings page"
    )]
    Exhausted { lock: LockId, digits: usize },
}

pub(crate) struct PinChooser {
    /// `provisioner.pin_digits`, unless staff set a length on the Settings page.
    pub digits: usize,
    /// Live PINs are compared by their keyed digests: the database holds no PIN in clear.
    pub sealer: PinSealer,
}

impl PinChooser {
    /// A fresh PIN for `booking` on `lock`, of the length staff set or else the configured one,
    /// avoiding the live PINs of other bookings there and
    /// those RemoteLock already refused in this run. Takes the lock's PIN lock for the rest of
    /// `tx`: the caller records the PIN in the same transaction, so two bookings provisioned at
    /// once (in this process or another) never draw the same PIN for one lock.
    pub async fn choose(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        booking: &Booking,
        lock: &LockId,
        refused: &HashSet<String>,
    ) -> Result<Pin, ChoiceError> {
        let digits = booking.settings.pin_digits.unwrap_or(self.digits);
        let booking = &booking.booking_id;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('lockbridge pins of ' || $1))")
            .bind(lock)
            .execute(&mut **tx)
            .await?;
        // A few candidates at a time, checked in one indexed lookup: a lock with thousands of
        // bookings costs no more than one with ten, and a nearly full one a few more rounds.
        for _ in 0..DRAWS / CANDIDATES {
            let drawn: Vec<Pin> = {
                let mut rng = rand::thread_rng();
                (0..CANDIDATES)
                    .map(|_| Pin::generate(digits, &mut rng))
                    .filter(|pin| !refused.contains(pin.expose()))
                    .collect()
            };
            let digests: Vec<Vec<Vec<u8>>> =
                drawn.iter().map(|pin| self.sealer.digests(pin)).collect();
            let all: Vec<Vec<u8>> = digests.iter().flatten().cloned().collect();
            let live: HashSet<Vec<u8>> = store::live_on_lock(&mut **tx, lock, booking, &all)
                .await?
                .into_iter()
                .collect();
            let free = drawn
                .into_iter()
                .zip(digests)
                .find(|(_, digests)| !digests.iter().any(|d| live.contains(d)));
            if let Some((pin, _)) = free {
                return Ok(pin);
            }
        }
        Err(ChoiceError::Exhausted {
            lock: lock.clone(),
            digits,
        })
    }
}
