use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use lockbridge_remotelock::{OAuthClient, RemoteLockClient, TokenManager, crypto::TokenCipher};
use lockbridge_runtime::{
    amqp::{Consumer, topology::PROVISIONER_BOOKINGS},
    jobs::{RetryPolicy, Worker},
    outbox::Relay,
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
};
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::{Sections, Settings},
    consumer::BookingEvents,
    lock_zones::LockZones,
    pin_choice::PinChooser,
    reconcile::Provisioner,
    sync_failures::SyncFailures,
};

pub struct Application {
    server: Server,
    provisioner: Provisioner,
    sync_failures: SyncFailures,
    prefetch: u16,
    concurrency: usize,
}

/// A job whose worker died is taken over after this long; longer than any one run takes.
const LEASE: Duration = Duration::from_secs(120);

impl Service for Application {
    const NAME: &'static str = "lock-provisioner";

    type Sections = Sections;

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        let Sections {
            remotelock,
            provisioner: provisioning,
            sync,
        } = &settings.own;
        settings.require(&remotelock.credentials())?;
        let cipher = TokenCipher::new(&remotelock.token_encryption_key)
            .map_err(|e| StartupError::Invalid(e.to_string()))?;
        let oauth =
            OAuthClient::new(remotelock).map_err(|e| StartupError::Invalid(e.to_string()))?;
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        let tokens = TokenManager::new(infrastructure.pool.clone(), cipher, oauth);
        let client = RemoteLockClient::new(remotelock, tokens)
            .map_err(|e| StartupError::Invalid(e.to_string()))?;
        let server = Server::bind(infrastructure, provisioning.listen).await?;
        let sync_failures = SyncFailures {
            pool: server.infrastructure.pool.clone(),
            client: client.clone(),
            every: sync.poll_interval,
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
            },
        };
        Ok(Self {
            server,
            provisioner,
            sync_failures,
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
        let worker = Worker {
            pool: infrastructure.pool.clone(),
            handler: Arc::new(self.provisioner),
            policy: RetryPolicy::default(),
            lease: LEASE,
            concurrency: self.concurrency,
        };
        let relay = Relay {
            pool: infrastructure.pool.clone(),
            broker: infrastructure.broker.clone(),
            producer: crate::SERVICE,
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
                "sync failure watch",
                tokio::spawn(self.sync_failures.run(shutdown.clone())),
            ),
        ];
        self.server.run(Router::new(), shutdown, tasks).await
    }
}
