use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use lockbridge_remotelock::{OAuthClient, RemoteLockClient, TokenManager};
use lockbridge_runtime::{
    amqp::{Consumer, topology::PROVISIONER_BOOKINGS},
    jobs::{RetryPolicy, Worker},
    metrics::Backlog,
    outbox::Relay,
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
};
use lockbridge_sealing::{Sealer, pins::PinSealer};
use lockbridge_work::provisioning;
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::{Sections, Settings},
    consumer::BookingEvents,
    door_events::DoorEvents,
    drift::DriftPass,
    lock_zones::LockZones,
    pin_choice::PinChooser,
    reconcile::Provisioner,
    store,
    sync_alerts::SyncAlerts,
};

pub struct Application {
    server: Server,
    provisioner: Provisioner,
    door_events: DoorEvents,
    sync_alerts: SyncAlerts,
    drift: DriftPass,
    reconcile_every: Duration,
    prefetch: u16,
    concurrency: usize,
}

/// A job whose worker died is taken over after this long; longer than any one run takes.
const LEASE: Duration = Duration::from_secs(120);

impl Service for Application {
    const NAME: &'static str = "lock-provisioner";

    type Sections = Sections;
    /// The token and PIN sealers and the OAuth client.
    type Checked = (Sealer, PinSealer, OAuthClient);

    fn check(settings: &Settings) -> Result<Self::Checked, StartupError> {
        let Sections {
            remotelock, pins, ..
        } = &settings.own;
        let [client_secret, token_key] = remotelock.credentials();
        let [pin_key] = pins.credentials();
        settings.require(&[client_secret, token_key, pin_key])?;
        let invalid = |e: &dyn std::fmt::Display| StartupError::Invalid(e.to_string());
        let cipher = remotelock.token_sealer().map_err(|e| invalid(&e))?;
        let pin_sealer = pins.sealer().map_err(|e| invalid(&e))?;
        let oauth = OAuthClient::new(remotelock).map_err(|e| invalid(&e))?;
        Ok((cipher, pin_sealer, oauth))
    }

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        let (cipher, pin_sealer, oauth) = Self::check(&settings)?;
        let Sections {
            remotelock,
            provisioner: provisioning,
            sync,
            reconcile,
            ..
        } = &settings.own;
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        seal_at_rest(&infrastructure.pool, &pin_sealer).await?;
        let tokens = TokenManager::new(infrastructure.pool.clone(), cipher, oauth);
        let client = RemoteLockClient::new(remotelock, tokens)
            .map_err(|e| StartupError::Invalid(e.to_string()))?;
        let server = Server::bind(infrastructure, provisioning.listen)
            .await?
            .with_backlog(Backlog {
                job_queues: vec![provisioning::QUEUE],
                producers: vec![crate::SERVICE],
                doors: true,
            });
        let door_events = DoorEvents {
            pool: server.infrastructure.pool.clone(),
            client: client.clone(),
            poll_every: sync.poll_interval,
        };
        let sync_alerts = SyncAlerts {
            pool: server.infrastructure.pool.clone(),
            every: sync.poll_interval,
            alert_before: sync.alert_before,
            escalate_before: sync.escalate_before,
        };
        let drift = DriftPass {
            pool: server.infrastructure.pool.clone(),
            client: client.clone(),
            sealer: pin_sealer.clone(),
        };
        let provisioner = Provisioner {
            pool: server.infrastructure.pool.clone(),
            zones: LockZones::default(),
            client,
            lead_time: provisioning.lead_time,
            grace: provisioning.grace,
            urgent_within: provisioning.urgent_within,
            pins: PinChooser {
                digits: usize::from(provisioning.pin_digits),
                sealer: pin_sealer,
            },
        };
        Ok(Self {
            server,
            provisioner,
            door_events,
            sync_alerts,
            drift,
            reconcile_every: reconcile.interval,
            prefetch: settings.amqp.prefetch,
            concurrency: provisioning.concurrency,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskDied> {
        let infrastructure = &self.server.infrastructure;
        let consumer = Consumer {
            broker: infrastructure.broker.clone(),
            queue: PROVISIONER_BOOKINGS,
            prefetch: self.prefetch,
            handler: Arc::new(BookingEvents {
                pool: infrastructure.pool.clone(),
                lead_time: self.provisioner.lead_time,
                grace: self.provisioner.grace,
            }),
        };
        let relay = Relay {
            pool: infrastructure.pool.clone(),
            broker: infrastructure.broker.clone(),
            producer: crate::SERVICE,
            at_rest: Some(Arc::new(self.provisioner.pins.sealer.clone())),
        };
        let worker = Worker {
            pool: infrastructure.pool.clone(),
            handler: Arc::new(self.provisioner),
            policy: RetryPolicy::default(),
            lease: LEASE,
            concurrency: self.concurrency,
        };
        let tasks = [
            (
                "booking consumer",
                tokio::spawn(consumer.run(shutdown.clone())),
            ),
            (
                "provisioning worker",
                tokio::spawn(worker.run(shutdown.clone())),
            ),
            ("outbox relay", tokio::spawn(relay.run(shutdown.clone()))),
            (
                "door events",
                tokio::spawn(self.door_events.run(shutdown.clone())),
            ),
            (
                "sync alerts",
                tokio::spawn(self.sync_alerts.run(shutdown.clone())),
            ),
            (
                "drift pass",
                tokio::spawn(self.drift.run(self.reconcile_every, shutdown.clone())),
            ),
        ];
        self.server.run(Router::new(), shutdown, tasks).await
    }
}

/// Seals what an older version left in clear, then checks the key opens what is stored: a
/// wrong `pins.encryption_key` stops the start with one sentence.
async fn seal_at_rest(pool: &sqlx::PgPool, sealer: &PinSealer) -> Result<(), StartupError> {
    let sealed = store::seal_plaintext_pins(pool, sealer)
        .await
        .map_err(|e| StartupError::Invalid(format!("cannot seal stored PINs: {e}")))?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "PINs stored in clear by an earlier version are sealed now"
        );
    }
    Ok(sealer.check_stored(pool).await?)
}
