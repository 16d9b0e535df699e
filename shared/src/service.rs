//! What every service does around its own logic: read settings, start logging, connect to the
//! database and the broker (failing with one clear sentence), serve HTTP, and stop on SIGTERM.

use std::{future::Future, net::SocketAddr, process::ExitCode};

use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    amqp::{Broker, BrokerError, topology},
    configuration::{ConfigurationError, Settings},
    db::{self, DatabaseError},
    health::{self, Readiness},
    telemetry::{self, error_chain},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot listen on {addr} (the service's `listen` setting)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A service as `main` sees it: built from settings, then run until told to stop.
pub trait Service: Sized + Send {
    const NAME: &'static str;
    fn build(settings: Settings) -> impl Future<Output = Result<Self, StartupError>> + Send;
    /// Where its HTTP server listens (tests bind port 0 and ask).
    fn local_addr(&self) -> SocketAddr;
    fn run_until_stopped(self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send;
}

/// The whole of a service's `main`.
pub async fn main<S: Service>() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => return fail(S::NAME, &error),
    };
    telemetry::init(S::NAME, &settings.log);
    let service = match S::build(settings).await {
        Ok(service) => service,
        Err(error) => return fail(S::NAME, &error),
    };
    let shutdown = CancellationToken::new();
    crate::shutdown::cancel_on_signal(shutdown.clone());
    service.run_until_stopped(shutdown).await;
    tracing::info!(service = S::NAME, "stopped");
    ExitCode::SUCCESS
}

fn fail(service: &str, error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("{service} cannot start: {}.", error_chain(error));
    ExitCode::FAILURE
}

/// The connections every service holds.
#[derive(Clone)]
pub struct Infrastructure {
    pub pool: PgPool,
    pub broker: Broker,
}

impl Infrastructure {
    /// Connects, migrates, and declares the RabbitMQ topology.
    pub async fn connect(settings: &Settings, service: &str) -> Result<Self, StartupError> {
        let pool = db::connect_and_migrate(&settings.database).await?;
        let broker = Broker::connect(settings.amqp.url.clone(), service).await?;
        topology::declare(&broker.channel().await?).await?;
        Ok(Self { pool, broker })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness {
            pool: self.pool.clone(),
            broker: self.broker.clone(),
        }
    }
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen { addr, source })
}

/// Serves `router` plus the health endpoints until `shutdown`; in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    infrastructure: &Infrastructure,
    shutdown: CancellationToken,
) {
    let app = router.merge(health::router(infrastructure.readiness()));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "HTTP server failed");
    }
}
