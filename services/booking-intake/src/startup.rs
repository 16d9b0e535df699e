use std::{net::SocketAddr, sync::Arc};

use axum::{Router, middleware};
use lockbridge_runtime::{
    amqp::{Consumer, dead_letter::DeadLetters, topology::INTAKE_BOOKINGS},
    outbox::Relay,
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
};
use tokio_util::sync::CancellationToken;

use crate::{
    amqp_intake::{AmqpIntake, AmqpSources},
    auth::SourceTokens,
    bookings, catalogue,
    configuration::{Sections, Settings},
};

#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: sqlx::PgPool,
}

pub struct Application {
    server: Server,
    router: Router,
    amqp_intake: AmqpIntake,
    prefetch: u16,
}

impl Service for Application {
    const NAME: &'static str = "booking-intake";

    type Sections = Sections;

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        let intake = &settings.own.intake;
        settings.require(&[intake.source_tokens()])?;
        let sources = AmqpSources::new(&intake.amqp_sources)
            .map_err(|e| StartupError::Invalid(e.to_string()))?;
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        let amqp_intake = AmqpIntake {
            pool: infrastructure.pool.clone(),
            sources,
            dead_letters: DeadLetters::new(infrastructure.broker.clone(), INTAKE_BOOKINGS),
        };
        let tokens = Arc::new(SourceTokens::new(&intake.tokens));
        let state = AppState {
            pool: infrastructure.pool.clone(),
        };
        let router = Router::new()
            .merge(catalogue::routes())
            .merge(bookings::routes())
            .route_layer(middleware::from_fn_with_state(
                tokens,
                crate::auth::require_source,
            ));
        let router = lockbridge_http::api_layers(router, intake.max_body_bytes).with_state(state);
        Ok(Self {
            server: Server::bind(infrastructure, intake.listen).await?,
            router,
            amqp_intake,
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
        };
        let consumer = Consumer {
            broker: infrastructure.broker.clone(),
            queue: INTAKE_BOOKINGS,
            prefetch: self.prefetch,
            handler: Arc::new(self.amqp_intake),
        };
        let tasks = [
            ("outbox relay", tokio::spawn(relay.run(shutdown.clone()))),
            (
                "intake consumer",
                tokio::spawn(consumer.run(shutdown.clone())),
            ),
        ];
        self.server.run(self.router, shutdown, tasks).await
    }
}
