use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use lettre::{AsyncSmtpTransport, Tokio1Executor, message::Mailbox};
use lockbridge_runtime::{
    amqp::{Consumer, topology::NOTIFIER_PINS},
    jobs::{JobHandler, RetryPolicy, Worker},
    metrics::Backlog,
    service::{Infrastructure, Server, Service, StartupError, TaskDied},
};
use lockbridge_sealing::pins::PinSealer;
use lockbridge_work::failures::ALERT_QUEUE;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::{
    alerts::{AlertSender, parse_recipients},
    configuration::{AlertSettings, Sections, Settings, SmtpSettings},
    consumer::PinEvents,
    sender::PinEmailSender,
};

/// A job whose worker died is taken over after this. Longer than any SMTP exchange: lettre
/// waits up to a minute per command.
const JOB_LEASE: Duration = Duration::from_secs(5 * 60);

pub struct Application {
    server: Server,
    consumer: Consumer<PinEvents>,
    worker: Worker<PinEmailSender>,
    alerts: Worker<AlertSender>,
}

impl Service for Application {
    const NAME: &'static str = "notifier";

    type Sections = Sections;
    /// The SMTP transport, the sender's address, the staff alerted and what opens the PINs.
    type Checked = (
        AsyncSmtpTransport<Tokio1Executor>,
        Mailbox,
        Vec<Mailbox>,
        PinSealer,
    );

    fn check(settings: &Settings) -> Result<Self::Checked, StartupError> {
        let pins = &settings.own.pins;
        settings.require(&pins.credentials())?;
        let sealer = pins
            .sealer()
            .map_err(|e| StartupError::Invalid(e.to_string()))?;
        let (mailer, from) = smtp(&settings.own.smtp)?;
        Ok((
            mailer,
            from,
            alert_recipients(&settings.own.alerts)?,
            sealer,
        ))
    }

    async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Checked first: a typo in the SMTP settings should not wait for the database.
        let (mailer, from, recipients, pins) = Self::check(&settings)?;
        let notifier = &settings.own.notifier;
        if recipients.is_empty() {
            tracing::warn!(
                "alerts.recipients is empty: failures that need a person are not emailed to staff"
            );
        }
        let infrastructure = Infrastructure::connect(&settings, Self::NAME).await?;
        let pool = infrastructure.pool.clone();
        pins.check_stored(&pool).await?;
        let consumer = Consumer {
            broker: infrastructure.broker.clone(),
            queue: NOTIFIER_PINS,
            prefetch: settings.amqp.prefetch,
            handler: Arc::new(PinEvents {
                pool: pool.clone(),
                pins: pins.clone(),
            }),
        };
        // Alerts go through the same relay, and are retried like the emails.
        let alerts = Worker {
            pool: pool.clone(),
            handler: Arc::new(AlertSender {
                pool: pool.clone(),
                mailer: mailer.clone(),
                from: from.clone(),
                recipients,
            }),
            policy: RetryPolicy::default(),
            lease: JOB_LEASE,
            // Few, and they go to the same few staff: one at a time keeps their order.
            concurrency: 1,
        };
        let worker = Worker {
            pool: pool.clone(),
            handler: Arc::new(PinEmailSender {
                pool,
                mailer,
                from,
                pins,
            }),
            policy: RetryPolicy::default(),
            lease: JOB_LEASE,
            concurrency: notifier.concurrency,
        };
        Ok(Self {
            server: Server::bind(infrastructure, notifier.listen)
                .await?
                .with_backlog(Backlog {
                    job_queues: vec![PinEmailSender::QUEUE, ALERT_QUEUE],
                    producers: Vec::new(),
                    doors: false,
                }),
            consumer,
            worker,
            alerts,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskDied> {
        let consumer = tokio::spawn(self.consumer.run(shutdown.clone()));
        let worker = tokio::spawn(self.worker.run(shutdown.clone()));
        let alerts = tokio::spawn(self.alerts.run(shutdown.clone()));
        // Each finishes what it holds: the delivery in hand, the email being sent.
        let tasks = [
            ("PIN event consumer", consumer),
            ("email worker", worker),
            ("alert worker", alerts),
        ];
        self.server.run(Router::new(), shutdown, tasks).await
    }
}

/// The relay is not contacted here: one that is down only delays emails, and the jobs wait.
fn smtp(
    settings: &SmtpSettings,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), StartupError> {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.url.expose_secret())
        .map_err(|error| {
            StartupError::Invalid(format!(
                "smtp.url is not an SMTP URL such as smtp://host:25 or smtps://user:password@host ({error})"
            ))
        })?
        .build();
    let from = settings.from.parse().map_err(|error| {
        StartupError::Invalid(format!(
            "smtp.from is not an email address such as \"lockbridge <no-reply@example.org>\" ({error})"
        ))
    })?;
    Ok((mailer, from))
}

/// `alerts.recipients`, comma-separated mailboxes.
fn alert_recipients(settings: &AlertSettings) -> Result<Vec<Mailbox>, StartupError> {
    parse_recipients(&settings.recipients).map_err(|error| {
        StartupError::Invalid(format!(
            "alerts.recipients must be comma-separated email addresses, and {error}"
        ))
    })
}
