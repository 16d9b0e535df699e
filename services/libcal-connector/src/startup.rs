use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
};

use axum::Router;
use lockbridge_runtime::{
    db::DatabaseError,
    service::{self, Server, Service, StartupError, TaskDied},
};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    catalogue::Catalogue,
    configuration::{Sections, Settings},
    health::PollHealth,
    intake::Intake,
    libcal::LibCal,
    poll::Poller,
    sender::Sender,
};

pub struct Application {
    server: Server<PgPool>,
    poller: Poller,
    sender: Sender,
}

impl Service for Application {
    const NAME: &'static str = "libcal-connector";

    type Sections = Sections;
    type Checked = ();

    fn check(settings: &Settings) -> Result<(), StartupError> {
        let libcal_settings = &settings.own.libcal;
        settings.require(&libcal_settings.credentials())?;
        libcal_settings.check().map_err(StartupError::Invalid)
    }

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::check(&settings)?;
        let libcal_settings = &settings.own.libcal;
        let pool = service::connect_database(&settings).await?;
        let client = |error: reqwest::Error| {
            StartupError::Invalid(format!("the HTTP client cannot be built: {error}"))
        };
        let libcal = LibCal::new(libcal_settings).map_err(client)?;
        let intake = Intake::new(
            libcal_settings.intake_url.clone(),
            libcal_settings.intake_token.clone(),
            libcal_settings.request_timeout,
        )
        .map_err(client)?;
        let catalogue = Catalogue::load(&pool)
            .await
            .map_err(|error| StartupError::Database(DatabaseError::Connect(error)))?;
        let health = Arc::new(PollHealth::new(libcal_settings.poll_interval));
        let wake = Arc::new(Notify::new());
        let catalogue_due = Arc::new(AtomicBool::new(false));
        let answering = libcal.clone();
        let fresh = health.clone();
        let server = Server::bind(pool.clone(), settings.own.connector.listen)
            .await?
            .with_probe("libcal", Arc::new(move || answering.is_answering()))
            .with_probe("last_poll", Arc::new(move || fresh.is_fresh()));
        Ok(Self {
            server,
            poller: Poller {
                libcal,
                intake: intake.clone(),
                pool: pool.clone(),
                settings: Arc::new(libcal_settings.clone()),
                catalogue,
                health,
                sender: wake.clone(),
                catalogue_due: catalogue_due.clone(),
            },
            sender: Sender {
                pool,
                intake,
                wake,
                catalogue_due,
            },
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskDied> {
        let poller = tokio::spawn(self.poller.run(shutdown.clone()));
        let sender = tokio::spawn(self.sender.run(shutdown.clone()));
        self.server
            .run(
                Router::new(),
                shutdown,
                [("LibCal poller", poller), ("intake sender", sender)],
            )
            .await
    }
}
