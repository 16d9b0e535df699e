use std::net::SocketAddr;

use lockbridge_shared::{configuration::Settings, service::Service};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Builds settings from the committed defaults with `overrides` on top (dotted keys), every
/// service listening on a free port.
pub fn settings(overrides: &[(&str, String)]) -> Settings {
    let mut builder = Settings::builder().expect("config/default.toml readable");
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
    for (key, value) in overrides {
        builder = builder
            .set_override(*key, value.as_str())
            .expect("valid key");
    }
    builder
        .build()
        .expect("settings build")
        .try_deserialize()
        .expect("settings are valid")
}

/// A service running in-process on its own task, stopped through the same token SIGTERM uses.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

pub async fn spawn<S: Service + 'static>(settings: Settings) -> Running {
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
        self.task.await.expect("service task ended cleanly");
    }
}
