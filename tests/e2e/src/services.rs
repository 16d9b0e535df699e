use std::net::SocketAddr;

use lockbridge_runtime::{
    configuration::{self, Settings},
    service::{Service, TaskDied},
};
use remotelock_sim::SimConfig;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{admin_api::API_TOKEN, system::INTAKE_TOKEN};

/// Any 32 bytes in base64 will do.
pub const TOKEN_ENCRYPTION_KEY: &str = "bG9ja2JyaWRnZS1lMmUtaGFybmVzcy1rZXktMzJieSE=";

/// Another 32 bytes, for the PINs.
pub const PIN_ENCRYPTION_KEY: &str = "bG9ja2JyaWRnZS1lMmUtcGlucy1rZXktMzItYnl0ZXM=";

/// The harness's own credentials, by setting: never the demo's, which only demo mode accepts.
pub fn credentials() -> [(&'static str, String); 5] {
    [
        ("intake.tokens.libcal", INTAKE_TOKEN.to_owned()),
        ("admin.api_token", API_TOKEN.to_owned()),
        // The simulator's, as `SimConfig::default()` starts it.
        (
            "remotelock.client_secret",
            SimConfig::default().client_secret,
        ),
        (
            "remotelock.token_encryption_key",
            TOKEN_ENCRYPTION_KEY.to_owned(),
        ),
        ("pins.encryption_key", PIN_ENCRYPTION_KEY.to_owned()),
    ]
}

/// Builds settings from the committed defaults with the harness's credentials and `overrides`
/// on top (dotted keys), every service listening on a free port.
pub fn settings<T: DeserializeOwned>(overrides: &[(&str, String)]) -> Settings<T> {
    settings_without(&[], overrides)
}

/// As [`settings`], but without the harness's credentials named in `missing` (dotted keys).
pub fn settings_without<T: DeserializeOwned>(
    missing: &[&str],
    overrides: &[(&str, String)],
) -> Settings<T> {
    Settings::read(layers(missing, overrides)).expect("settings are valid")
}

/// The layers [`settings_without`] reads, for a test that expects them to be refused.
pub fn layers(missing: &[&str], overrides: &[(&str, String)]) -> configuration::Layers {
    // Not `configuration::layers()`: a local file or LOCKBRIDGE__ variables must not leak in.
    let mut builder = configuration::defaults();
    for key in [
        "intake.listen",
        "admin.listen",
        "provisioner.listen",
        "notifier.listen",
    ] {
        builder = builder.set_override(key, "127.0.0.1:0").expect("valid key");
    }
    // Several systems of four services share one PostgreSQL in a parallel test run.
    builder = builder
        .set_override("database.max_connections", 3)
        .expect("valid key");
    let credentials = credentials();
    let credentials = credentials.iter().filter(|(key, _)| !missing.contains(key));
    for (key, value) in credentials.chain(overrides) {
        builder = builder
            .set_override(*key, value.as_str())
            .expect("valid key");
    }
    builder
}

/// A service running in-process on its own task, stopped through the same token SIGTERM uses.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), TaskDied>>,
}

pub async fn spawn<S: Service + 'static>(settings: Settings<S::Sections>) -> Running {
    let service = S::build(settings)
        .await
        .unwrap_or_else(|e| panic!("{} failed to start: {e:?}", S::NAME));
    let addr = service.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(service.run_until_stopped(shutdown.clone()));
    Running {
        addr,
        shutdown,
        task,
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the service the way SIGTERM does and waits until it has finished.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let stopped = self.task.await.expect("service task ended cleanly");
        stopped.expect("no background task died");
    }
}
