//! What every service does around its own logic: read settings, start logging, connect to the
//! database and the broker (failing with one clear sentence), serve HTTP, and stop on SIGTERM.

use std::{future::Future, net::SocketAddr, process::ExitCode};

use axum::{Router, extract::DefaultBodyLimit, http::Request};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::{
    amqp::{Broker, BrokerError, topology},
    configuration::{ConfigurationError, CredentialError, Settings},
    db::{self, DatabaseError},
    health::{self, Readiness},
    telemetry::{self, error_chain},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
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
    if settings.demo {
        tracing::warn!("demo mode: the demo's published credentials are accepted");
    }
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

/// What a service holds between `build` and `run_until_stopped`: its connections and the
/// listener its HTTP server will serve on.
pub struct Server {
    listener: TcpListener,
    pub infrastructure: Infrastructure,
}

impl Server {
    pub async fn bind(
        infrastructure: Infrastructure,
        addr: SocketAddr,
    ) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Listen { addr, source })?;
        Ok(Self {
            listener,
            infrastructure,
        })
    }

    /// Where it listens (tests bind port 0 and ask).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `router` plus the health endpoints until `shutdown`, letting in-flight requests
    /// finish; then waits for the service's background `tasks` (which watch the same token) to
    /// finish what they hold, and closes the broker connection.
    pub async fn run(
        self,
        router: Router,
        shutdown: CancellationToken,
        tasks: impl IntoIterator<Item = JoinHandle<()>>,
    ) {
        let app = router.merge(health::router(self.infrastructure.readiness()));
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "HTTP server failed");
        }
        for task in tasks {
            let _ = task.await;
        }
        self.infrastructure.broker.close().await;
    }
}

/// The layers of a service's JSON API: a body limit, and a span per request that names the
/// path only (a query can hold a secret, such as an OAuth authorization code).
pub fn api_layers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    max_body_bytes: usize,
) -> Router<S> {
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(crate::input::BodyLimit(max_body_bytes)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let (method, path) = (request.method(), request.uri().path());
                tracing::info_span!("request", %method, path)
            }),
        )
}
