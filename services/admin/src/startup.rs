use std::{net::SocketAddr, sync::Arc};

use axum::{Router, middleware};
use lockbridge_remotelock::{
    OAuthClient, RemoteLockClient, RemoteLockSettings, TokenManager, Urgency, Work,
};
use lockbridge_runtime::{
    amqp::Broker,
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
    telemetry::error_chain,
};
use lockbridge_sealing::{Sealer, pins::PinSealer};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{ApiToken, require_api_token},
    authorization, bookings,
    configuration::{
        API_TOKEN, ConfiguredAlerts, ConfiguredWindow, LockWarnSettings, Sections, Settings,
    },
    failures, links,
    lock_health::DeviceCache,
    lock_watch::LockWatch,
    locks,
    retention::RetentionPasses,
    spaces,
    ui::{self, UiSettings},
    webhook,
};

/// The API's bodies are a couple of ids; anything bigger is a mistake.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: PgPool,
    pub oauth: OAuthClient,
    pub tokens: TokenManager,
    pub remotelock: RemoteLockClient,
    /// Opens the PINs staff look up.
    pub pins: PinSealer,
    /// `remotelock.webhook_secret`; `None`: webhooks are off.
    pub webhook_secret: Option<SecretString>,
    /// RemoteLock's web dashboard, for links to guests.
    pub dashboard_url: url::Url,
    pub ui: UiSettings,
    pub locks: LockWarnSettings,
    /// What applies where the Settings page sets nothing.
    pub configured_window: ConfiguredWindow,
    pub configured_alerts: ConfiguredAlerts,
    pub devices: DeviceCache,
    /// For the dead-letter queues' counts.
    pub broker: Broker,
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
    retention: RetentionPasses,
    lock_watch: LockWatch,
}

impl Service for Application {
    const NAME: &'static str = "admin";

    type Sections = Sections;
    type Checked = Checked;

    fn check(settings: &Settings) -> Result<Checked, StartupError> {
        let Sections {
            admin,
            remotelock,
            pins,
            ..
        } = &settings.own;
        let [client_secret, encryption_key] = remotelock.credentials();
        let [pin_key] = pins.credentials();
        settings.require(&[
            API_TOKEN.set_to(&admin.api_token),
            client_secret,
            encryption_key,
            pin_key,
        ])?;
        let invalid =
            |error: &(dyn std::error::Error + 'static)| StartupError::Invalid(error_chain(error));
        Ok(Checked {
            api_token: ApiToken::new(admin.api_token.clone())
                .ok_or_else(|| StartupError::Invalid("admin.api_token must not be empty".into()))?,
            callback_path: callback_path(remotelock)?,
            cipher: remotelock.token_sealer().map_err(|e| invalid(&e))?,
            pins: pins.sealer().map_err(|e| invalid(&e))?,
            oauth: OAuthClient::new(remotelock).map_err(|e| invalid(&e))?,
        })
    }

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        let Checked {
            api_token,
            callback_path,
            cipher,
            pins,
            oauth,
        } = Self::check(&settings)?;
        let sections = &settings.own;
        let Sections {
            admin, remotelock, ..
        } = sections;
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        pins.check_stored(&infrastructure.pool).await?;
        let ui_settings = UiSettings::new(admin.cookie_secure, &remotelock.oauth_url);
        let state = app_state(
            &infrastructure,
            sections,
            ui_settings,
            (cipher, pins),
            oauth,
        )?;
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
        // OAuth `state` authenticates it. The UI's pages have the staff session instead.
        let router = api
            .merge(authorization::callback_routes(&callback_path))
            // Authenticated by its X-Secret instead of a bearer token.
            .merge(webhook::routes())
            .merge(ui::routes(&state.ui))
            .fallback(ui::not_found);
        let lock_watch = LockWatch {
            pool: infrastructure.pool.clone(),
            remotelock: state.remotelock.clone(),
            settings: sections.locks,
        };
        let router = lockbridge_http::api_layers(router, MAX_BODY_BYTES).with_state(state);
        let retention = RetentionPasses {
            pool: infrastructure.pool.clone(),
            settings: sections.retention,
        };
        Ok(Self {
            server: Server::bind(infrastructure, admin.listen).await?,
            router,
            retention,
            lock_watch,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskDied> {
        let retention = tokio::spawn(self.retention.run(shutdown.clone()));
        let lock_watch = tokio::spawn(self.lock_watch.run(shutdown.clone()));
        let tasks = [("retention passes", retention), ("lock watch", lock_watch)];
        self.server.run(self.router, shutdown, tasks).await
    }
}

/// What the admin's settings come to before anything is connected.
pub struct Checked {
    api_token: ApiToken,
    callback_path: String,
    cipher: Sealer,
    pins: PinSealer,
    oauth: OAuthClient,
}

fn app_state(
    infrastructure: &Infrastructure,
    sections: &Sections,
    ui: UiSettings,
    (cipher, pins): (Sealer, PinSealer),
    oauth: OAuthClient,
) -> Result<AppState, StartupError> {
    let settings = &sections.remotelock;
    let pool = infrastructure.pool.clone();
    let invalid =
        |error: &(dyn std::error::Error + 'static)| StartupError::Invalid(error_chain(error));
    let tokens = TokenManager::new(pool.clone(), cipher, oauth.clone());
    let remotelock = RemoteLockClient::new(settings, tokens.clone()).map_err(|e| invalid(&e))?;
    Ok(AppState {
        pool,
        oauth,
        tokens,
        remotelock,
        pins,
        webhook_secret: Some(settings.webhook_secret.clone())
            .filter(|secret| !secret.expose_secret().trim().is_empty()),
        dashboard_url: settings.dashboard_url.clone(),
        ui,
        locks: sections.locks,
        configured_window: sections.provisioner,
        configured_alerts: sections.alerts.clone(),
        devices: DeviceCache::default(),
        broker: infrastructure.broker.clone(),
    })
}

/// The callback is served at the path of `remotelock.redirect_url`, which must not shadow the
/// API, the UI or the health endpoints.
fn callback_path(settings: &RemoteLockSettings) -> Result<String, StartupError> {
    let path = settings.redirect_url.path();
    let taken = ui::serves(path)
        || path.starts_with("/api/")
        || ["/healthz", "/readyz", webhook::PATH].contains(&path);
    if taken {
        return Err(StartupError::Invalid(format!(
            "remotelock.redirect_url must name a path of its own for the OAuth callback, \
             such as /remotelock/callback (not {path})"
        )));
    }
    Ok(path.to_owned())
}
