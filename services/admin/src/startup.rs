use std::{net::SocketAddr, sync::Arc};

use axum::{Router, middleware};
use lockbridge_remotelock::{
    OAuthClient, RemoteLockClient, RemoteLockSettings, TokenManager, Urgency, Work,
    crypto::TokenCipher,
};
use lockbridge_runtime::{
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
    telemetry::error_chain,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{ApiToken, require_api_token},
    authorization, bookings,
    configuration::{API_TOKEN, Sections, Settings},
    failures, links, locks, spaces,
};

/// The API's bodies are a couple of ids; anything bigger is a mistake.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: PgPool,
    pub oauth: OAuthClient,
    pub tokens: TokenManager,
    pub remotelock: RemoteLockClient,
    /// RemoteLock's web dashboard, for links to guests.
    pub dashboard_url: url::Url,
}

impl AppState {
    /// RemoteLock calls for a staff request: someone is waiting on the answer, so they are
    /// urgent, ahead of the provisioners' backlog.
    pub fn staff_calls(&self) -> Work {
        self.remotelock.for_work(Urgency::Urgent)
    }
}

pub struct Application {
    server: Server,
    router: Router,
}

impl Service for Application {
    const NAME: &'static str = "admin";

    type Sections = Sections;

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        let Sections { admin, remotelock } = &settings.own;
        let [client_secret, encryption_key] = remotelock.credentials();
        settings.require(&[
            API_TOKEN.set_to(&admin.api_token),
            client_secret,
            encryption_key,
        ])?;
        let api_token = ApiToken::new(admin.api_token.clone())
            .ok_or_else(|| StartupError::Invalid("admin.api_token must not be empty".into()))?;
        let callback_path = callback_path(remotelock)?;
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        let state = remotelock_state(infrastructure.pool.clone(), remotelock)?;
        let api = Router::new()
            .merge(authorization::routes())
            .merge(locks::routes())
            .merge(spaces::routes())
            .merge(links::routes())
            .merge(failures::routes())
            .merge(bookings::routes())
            .route_layer(middleware::from_fn_with_state(
                Arc::new(api_token),
                require_api_token,
            ));
        // The browser lands on the callback from RemoteLock: it carries no bearer token, the
        // OAuth `state` authenticates it.
        let router = api.merge(authorization::callback_routes(&callback_path));
        let router = lockbridge_http::api_layers(router, MAX_BODY_BYTES).with_state(state);
        Ok(Self {
            server: Server::bind(infrastructure, admin.listen).await?,
            router,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskDied> {
        self.server.run(self.router, shutdown, []).await
    }
}

fn remotelock_state(pool: PgPool, settings: &RemoteLockSettings) -> Result<AppState, StartupError> {
    let invalid =
        |error: &(dyn std::error::Error + 'static)| StartupError::Invalid(error_chain(error));
    let cipher = TokenCipher::new(&settings.token_encryption_key).map_err(|e| invalid(&e))?;
    let oauth = OAuthClient::new(settings).map_err(|e| invalid(&e))?;
    let tokens = TokenManager::new(pool.clone(), cipher, oauth.clone());
    let remotelock = RemoteLockClient::new(settings, tokens.clone()).map_err(|e| invalid(&e))?;
    Ok(AppState {
        pool,
        oauth,
        tokens,
        remotelock,
        dashboard_url: settings.dashboard_url.clone(),
    })
}

/// The callback is served at the path of `remotelock.redirect_url`, which must not shadow the
/// API or the health endpoints.
fn callback_path(settings: &RemoteLockSettings) -> Result<String, StartupError> {
    let path = settings.redirect_url.path();
    let taken = path == "/" || path.starts_with("/api/") || ["/healthz", "/readyz"].contains(&path);
    if taken {
        return Err(StartupError::Invalid(format!(
            "remotelock.redirect_url must name a path of its own for the OAuth callback, \
             such as /remotelock/callback (not {path})"
        )));
    }
    Ok(path.to_owned())
}
