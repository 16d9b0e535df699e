//! Choosing a door PIN RemoteLock will take: never one lockbridge knows to be live on the same
//! lock, and, when RemoteLock refuses one anyway (its uniqueness scope, account or device, is
//! not documented, and a clash may surface at create, update or grant), another.

use std::collections::HashSet;

use lockbridge_domain::{BookingId, LockId, Pin};
use sqlx::{Postgres, Transaction};

use crate::store;

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
         raise provisioner.pin_digits"
    )]
    Exhausted { lock: LockId, digits: usize },
}

pub(crate) struct PinChooser {
    pub digits: usize,
}

impl PinChooser {
    /// A fresh PIN for `booking` on `lock`, avoiding the live PINs of other bookings there and
    /// those RemoteLock already refused in this run. Takes the lock's PIN lock for the rest of
    /// `tx`: the caller records the PIN in the same transaction, so two bookings provisioned at
    /// once (in this process or another) never draw the same PIN for one lock.
    pub async fn choose(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        booking: &BookingId,
        lock: &LockId,
        refused: &HashSet<String>,
    ) -> Result<Pin, ChoiceError> {
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
                    .map(|_| Pin::generate(self.digits, &mut rng))
                    .filter(|pin| !refused.contains(pin.expose()))
                    .collect()
            };
            let candidates: Vec<&str> = drawn.iter().map(Pin::expose).collect();
            let live: HashSet<String> = store::live_on_lock(&mut **tx, lock, booking, &candidates)
                .await?
                .into_iter()
                .collect();
            if let Some(pin) = drawn.into_iter().find(|pin| !live.contains(pin.expose())) {
                return Ok(pin);
            }
        }
        Err(ChoiceError::Exhausted {
            lock: lock.clone(),
            digits: self.digits,
        })
    }
}
