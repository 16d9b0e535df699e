use std::{net::SocketAddr, sync::Arc};

use axum::{Router, middleware};
use lockbridge_runtime::{
    amqp::{Consumer, dead_letter::DeadLetters, topology::INTAKE_BOOKINGS},
    metrics::Backlog,
    outbox::Relay,
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
};
use lockbridge_sealing::pins::PinSealer;
use tokio_util::sync::CancellationToken;

use crate::{
    amqp_intake::{AmqpIntake, AmqpSources},
    auth::SourceTokens,
    bookings, catalogue,
    configuration::{Sections, Settings},
    writer::{Writer, WriterTask},
};

#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: sqlx::PgPool,
    /// Opens the PINs the API shows.
    pub pins: PinSealer,
    pub writer: Writer,
}

pub struct Application {
    server: Server,
    router: Router,
    amqp_intake: AmqpIntake,
    writer: WriterTask,
    prefetch: u16,
}

impl Service for Application {
    const NAME: &'static str = "booking-intake";

    type Sections = Sections;
    /// Who may publish bookings to `lockbridge.intake`, as which source, and what opens the
    /// PINs the API shows.
    type Checked = (AmqpSources, PinSealer);

    fn check(settings: &Settings) -> Result<Self::Checked, StartupError> {
        let Sections { intake, pins } = &settings.own;
        let [pin_key] = pins.credentials();
        settings.require(&[intake.source_tokens(), pin_key])?;
        let invalid = |e: &dyn std::fmt::Display| StartupError::Invalid(e.to_string());
        let sources = AmqpSources::new(&intake.amqp_sources).map_err(|e| invalid(&e))?;
        Ok((sources, pins.sealer().map_err(|e| invalid(&e))?))
    }

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        let (sources, pins) = Self::check(&settings)?;
        let intake = &settings.own.intake;
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        pins.check_stored(&infrastructure.pool).await?;
        let amqp_intake = AmqpIntake {
            pool: infrastructure.pool.clone(),
            pins: pins.clone(),
            sources,
            dead_letters: DeadLetters::new(infrastructure.broker.clone(), INTAKE_BOOKINGS),
        };
        let tokens = Arc::new(SourceTokens::new(&intake.tokens));
        let (writer, writer_task) = Writer::new(infrastructure.pool.clone(), pins.clone());
        let state = AppState {
            pool: infrastructure.pool.clone(),
            pins,
            writer,
        };
        let router = Router::new()
            .merge(catalogue::routes())
            .merge(bookings::routes())
            .route_layer(middleware::from_fn_with_state(
                tokens,
                crate::auth::require_source,
            ));
        // Counted outside the token check, so refused tokens are counted too.
        let router = router.layer(middleware::from_fn(crate::outcomes::count));
        let router = lockbridge_http::api_layers(router, intake.max_body_bytes).with_state(state);
        Ok(Self {
            server: Server::bind(infrastructure, intake.listen)
                .await?
                .with_backlog(Backlog {
                    job_queues: Vec::new(),
                    producers: vec![crate::PRODUCER],
                    doors: false,
                }),
            router,
            amqp_intake,
            writer: writer_task,
            prefetch: settings.amqp.prefetch,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskDied> {
        let infrastructure = &self.server.infrastructure;
        let relay = Relay {
            pool: infrastructure.pool.clone(),
            broker: infrastructure.broker.clone(),
            producer: crate::PRODUCER,
            // Booking events hold no secret.
            at_rest: None,
        };
        let consumer = Consumer {
            broker: infrastructure.broker.clone(),
            queue: INTAKE_BOOKINGS,
            prefetch: self.prefetch,
            handler: Arc::new(self.amqp_intake),
        };
        let tasks = [
            // Ends after the HTTP server, once the last request's change is stored.
            ("booking writer", tokio::spawn(self.writer.run())),
            ("outbox relay", tokio::spawn(relay.run(shutdown.clone()))),
            (
                "intake consumer",
                tokio::spawn(consumer.run(shutdown.clone())),
            ),
        ];
        self.server.run(self.router, shutdown, tasks).await
    }
}
