//! What every service does around its own logic: read settings, start logging, connect to the
//! database and the broker (failing with one clear sentence), serve HTTP, and stop on SIGTERM.

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::Router;
use futures_util::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tokio::{
    net::TcpListener,
    task::{AbortHandle, JoinHandle},
};
use tokio_util::sync::CancellationToken;

use crate::{
    amqp::{Broker, BrokerError, topology},
    configuration::{ConfigurationError, CredentialError, Settings},
    db::{self, DatabaseError},
    health::{self, Connections, Probe, Readiness},
    metrics,
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
    /// Its own sections of the configuration, read beside the common ones; no other's.
    type Sections: DeserializeOwned + Send;
    /// What `check` makes of the settings, for `build` to go on with.
    type Checked: Send;
    /// Every check of the settings that needs no connection (credentials set, values well
    /// formed), made first by `build` and alone by `lockbridge config check`, so the two never
    /// disagree about a configuration.
    fn check(settings: &Settings<Self::Sections>) -> Result<Self::Checked, StartupError>;
    fn build(
        settings: Settings<Self::Sections>,
    ) -> impl Future<Output = Result<Self, StartupError>> + Send;
    /// Where its HTTP server listens (tests bind port 0 and ask).
    fn local_addr(&self) -> SocketAddr;
    /// Runs until `shutdown`, or until one of its background tasks dies: then it stops the
    /// rest and answers which, so the process exits non-zero and its supervisor restarts it.
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), TaskDied>> + Send;
}

/// A background task (consumer, relay, job worker) ended while the service was meant to run.
#[derive(Debug, thiserror::Error)]
#[error("its {task} stopped unexpectedly")]
pub struct TaskDied {
    pub task: &'static str,
}

/// The whole of a service's `main`.
pub async fn main<S: Service>() -> ExitCode {
    let settings = match Settings::<S::Sections>::load() {
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
    match service.run_until_stopped(shutdown).await {
        Ok(()) => {
            tracing::info!(service = S::NAME, "stopped");
            ExitCode::SUCCESS
        }
        Err(died) => {
            eprintln!("{} stopped: {died}.", S::NAME);
            ExitCode::FAILURE
        }
    }
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
    pub async fn connect<T>(settings: &Settings<T>, service: &str) -> Result<Self, StartupError> {
        let pool = connect_database(settings).await?;
        let broker = Broker::connect(settings.amqp.url.clone(), service).await?;
        topology::declare(&broker.channel().await?).await?;
        Ok(Self { pool, broker })
    }
}

/// Connects to the database and migrates it: all a service that never touches the broker
/// holds (the LibCal connector, which may run at the library, far from our RabbitMQ).
pub async fn connect_database<T>(settings: &Settings<T>) -> Result<PgPool, StartupError> {
    Ok(db::connect_and_migrate(&settings.database).await?)
}

async fn database_is_up(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

impl Connections for Infrastructure {
    async fn check(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("database", database_is_up(&self.pool).await),
            ("broker", self.broker.is_connected()),
        ]
    }

    async fn close(&self) {
        self.broker.close().await;
    }

    fn database(&self) -> &PgPool {
        &self.pool
    }
}

impl Connections for PgPool {
    async fn check(&self) -> Vec<(&'static str, bool)> {
        vec![("database", database_is_up(self).await)]
    }

    async fn close(&self) {}

    fn database(&self) -> &PgPool {
        self
    }
}

/// What a service holds between `build` and `run_until_stopped`: its connections (the
/// database and the broker, or only the database) and the listener its HTTP server will
/// serve on.
pub struct Server<C = Infrastructure> {
    listener: TcpListener,
    pub infrastructure: C,
    drain_deadline: Duration,
    probes: Vec<(&'static str, Probe)>,
    backlog: metrics::Backlog,
}

impl<C: Connections> Server<C> {
    pub async fn bind(infrastructure: C, addr: SocketAddr) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Listen { addr, source })?;
        Ok(Self {
            listener,
            infrastructure,
            drain_deadline: DRAIN_DEADLINE,
            probes: Vec::new(),
            backlog: metrics::Backlog::default(),
        })
    }

    /// Adds a condition `/readyz` reports under `name` and needs true to answer 200.
    pub fn with_probe(mut self, name: &'static str, probe: Probe) -> Self {
        self.probes.push((name, probe));
        self
    }

    /// The service's own job queues and outbox producers, whose backlog `/metrics` reports.
    pub fn with_backlog(mut self, backlog: metrics::Backlog) -> Self {
        self.backlog = backlog;
        self
    }

    /// Where it listens (tests bind port 0 and ask).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `router` plus the health endpoints and supervises the service's background
    /// `tasks` (which watch the same token) until `shutdown`. Then in-flight requests finish,
    /// the tasks finish what they hold (within the drain deadline) and the broker connection
    /// closes.
    ///
    /// A task that ends (or panics) before `shutdown` is a death: `/readyz` answers 503 at
    /// once, and after a short notice — so probes and load balancers see it — the service
    /// stops the same way and answers which task died.
    pub async fn run(
        self,
        router: Router,
        shutdown: CancellationToken,
        tasks: impl IntoIterator<Item = (&'static str, JoinHandle<()>)>,
    ) -> Result<(), TaskDied> {
        let working = Arc::new(AtomicBool::new(true));
        let readiness = Readiness {
            connections: self.infrastructure.clone(),
            working: working.clone(),
            probes: self.probes,
        };
        let metrics = metrics::router(self.infrastructure.database().clone(), self.backlog);
        let app = router.merge(health::router(readiness)).merge(metrics);
        // The peer address is offered to handlers (the admin UI rate-limits sign-ins by it).
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let serving = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future();
        let server = tokio::spawn(async move {
            if let Err(error) = serving.await {
                tracing::error!(%error, "HTTP server failed");
            }
        });
        let mut running = Supervised::new(tasks);
        let died = tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            // A task that ends because the service is stopping did not die: it ends on the
            // same cancellation, and may be seen ending before it.
            Some(task) = running.next_end() => {
                if shutdown.is_cancelled() {
                    None
                } else {
                    working.store(false, Ordering::SeqCst);
                    tracing::error!(task, notice = ?DEATH_NOTICE, "a background task died; the service stops");
                    tokio::time::sleep(DEATH_NOTICE).await;
                    shutdown.cancel();
                    Some(TaskDied { task })
                }
            }
        };
        if tokio::time::timeout(self.drain_deadline, running.all_ended())
            .await
            .is_err()
        {
            tracing::warn!(deadline = ?self.drain_deadline, "background tasks did not finish in time; abandoning them");
            running.abort();
        }
        let _ = server.await;
        self.infrastructure.close().await;
        died.map_or(Ok(()), Err)
    }

    /// How long a stopping service waits for its tasks to finish what they hold (default 25 s,
    /// inside the usual 30 s a supervisor gives between SIGTERM and SIGKILL).
    pub fn drain_within(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }
}

/// How long `/readyz` says 503 before a service whose task died stops serving it.
const DEATH_NOTICE: Duration = Duration::from_secs(2);
const DRAIN_DEADLINE: Duration = Duration::from_secs(25);

/// The background tasks of a service, watched for their end.
struct Supervised {
    ends: FuturesUnordered<BoxFuture<'static, &'static str>>,
    aborts: Vec<AbortHandle>,
}

impl Supervised {
    fn new(tasks: impl IntoIterator<Item = (&'static str, JoinHandle<()>)>) -> Self {
        let mut aborts = Vec::new();
        let ends = tasks
            .into_iter()
            .map(|(name, handle)| {
                aborts.push(handle.abort_handle());
                async move {
                    if let Err(error) = handle.await
                        && error.is_panic()
                    {
                        tracing::error!(task = name, "background task panicked");
                    }
                    name
                }
                .boxed()
            })
            .collect();
        Self { ends, aborts }
    }

    /// The name of the next task to end; `None` once all have.
    async fn next_end(&mut self) -> Option<&'static str> {
        self.ends.next().await
    }

    async fn all_ended(&mut self) {
        while self.ends.next().await.is_some() {}
    }

    fn abort(&self) {
        for task in &self.aborts {
            task.abort();
        }
    }
}
