//! What `/readyz` adds for the connector: LibCal answers, and a poll succeeded lately.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

pub struct PollHealth {
    last_success: Mutex<Option<Instant>>,
    /// Older than this, the last successful poll says the connector is not doing its job.
    max_age: Duration,
}

impl PollHealth {
    /// Three intervals missed in a row, and a little slack for a slow LibCal.
    pub fn new(poll_interval: Duration) -> Self {
        Self {
            last_success: Mutex::new(None),
            max_age: poll_interval * 3 + Duration::from_secs(30),
        }
    }

    pub fn succeeded(&self) {
        *self.last_success.lock().expect("not poisoned") = Some(Instant::now());
    }

    pub fn is_fresh(&self) -> bool {
        self.last_success
            .lock()
            .expect("not poisoned")
            .is_some_and(|at| at.elapsed() <= self.max_age)
    }
}
