use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::DefaultBodyLimit, middleware};
use lockbridge_shared::{
    configuration::Settings,
    outbox::Relay,
    service::{self, Infrastructure, Service, StartupError},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::{auth::SourceTokens, bookings, catalogue};

#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: sqlx::PgPool,
}

pub struct Application {
    listener: TcpListener,
    infrastructure: Infrastructure,
    router: Router,
}

impl Application {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }
}

impl Service for Application {
    const NAME: &'static str = "booking-intake";

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        if settings.intake.tokens.is_empty() {
            return Err(StartupError::Invalid(
                "no upstream source can authenticate: set at least one intake.tokens.<source>"
                    .into(),
            ));
        }
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        let listener = service::bind(settings.intake.listen).await?;
        let tokens = Arc::new(SourceTokens::new(&settings.intake.tokens));
        let state = AppState {
            pool: infrastructure.pool.clone(),
        };
        let router = Router::new()
            .merge(catalogue::routes())
            .merge(bookings::routes())
            .route_layer(middleware::from_fn_with_state(
                tokens,
                crate::auth::require_source,
            ))
            .layer(DefaultBodyLimit::max(settings.intake.max_body_bytes))
            .layer(TraceLayer::new_for_http())
            .with_state(state);
        Ok(Self {
            listener,
            infrastructure,
            router,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) {
        let relay = Relay {
            pool: self.infrastructure.pool.clone(),
            broker: self.infrastructure.broker.clone(),
            producer: crate::PRODUCER,
        };
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        service::serve(self.listener, self.router, &self.infrastructure, shutdown).await;
        let _ = relay.await;
        self.infrastructure.broker.close().await;
    }
}
