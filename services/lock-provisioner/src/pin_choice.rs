//! Choosing a door PIN RemoteLock will take: never one lockbridge knows to be live on the same
//! lock, and, when RemoteLock refuses one anyway (its uniqueness scope, account or device, is
//! not documented, and a clash may surface at create, update or grant), another.

use std::collections::HashSet;

use lockbridge_shared::domain::{BookingId, LockId, Pin};
use sqlx::PgPool;

use crate::store;

/// PINs RemoteLock may refuse in one run before the job backs off and tries later.
pub(crate) const ATTEMPTS: usize = 8;
/// Random draws before concluding the lock has no free PIN of this length.
const DRAWS: usize = 10_000;

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
    /// those RemoteLock already refused in this run.
    pub async fn choose(
        &self,
        pool: &PgPool,
        booking: &BookingId,
        lock: &LockId,
        refused: &HashSet<String>,
    ) -> Result<Pin, ChoiceError> {
        let live: HashSet<String> = store::live_pins_on_lock(pool, lock, booking)
            .await?
            .into_iter()
            .collect();
        let mut rng = rand::thread_rng();
        (0..DRAWS)
            .map(|_| Pin::generate(self.digits, &mut rng))
            .find(|pin| !live.contains(pin.expose()) && !refused.contains(pin.expose()))
            .ok_or_else(|| ChoiceError::Exhausted {
                lock: lock.clone(),
                digits: self.digits,
            })
    }
}
