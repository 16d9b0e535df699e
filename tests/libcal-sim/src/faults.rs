//! Injected faults: each matching request consumes one use of the oldest matching fault.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status and `{"error": "simulated fault"}`.
    Status { status: u16 },
    /// Hold the request this long, then answer normally (client time-outs).
    Delay { delay_ms: u64 },
    /// Answer `200 []`, as LibCal does for an empty window.
    EmptyList,
    /// Revoke every token, then answer 401 as for a dead token.
    Unauthorized,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Only API paths containing this (e.g. `/space/bookings`); all API paths when absent.
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            path_contains: None,
            times: 1,
        }
    }

    pub fn on(mut self, path_contains: &str) -> Self {
        self.path_contains = Some(path_contains.to_owned());
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    pub fn delay(delay: Duration) -> FaultKind {
        FaultKind::Delay {
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    pub fn push(&self, fault: Fault) {
        if fault.times > 0 {
            self.0.lock().expect("faults poisoned").push(fault);
        }
    }

    pub fn take(&self, path: &str) -> Option<FaultKind> {
        let mut faults = self.0.lock().expect("faults poisoned");
        let index = faults.iter().position(|f| {
            f.path_contains
                .as_deref()
                .is_none_or(|part| path.contains(part))
        })?;
        let fault = &mut faults[index];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            faults.remove(index);
        }
        Some(kind)
    }
}
