//! The staff alert job (issue 5, item 7): one email to `alerts.recipients` per failure opened
//! by `failures::report`, which enqueues the job only when the failure is new — that is what
//! deduplicates alerts per booking and kind. A failure resolved before its alert goes out
//! (the work succeeded on a later try) needs no person, and sends nothing.

use chrono::{DateTime, Utc};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use lockbridge_domain::{BookingId, BookingStatus, TimeZone};
use lockbridge_runtime::{
    jobs::{Escalation, Job, JobError, JobHandler},
    telemetry::error_chain,
};
use lockbridge_work::failures::{ALERT_QUEUE, AlertJob, FailureKind};
use sqlx::PgPool;

use crate::{
    alert_email::{self, Alert, BookedSpace},
    relay::{self, SmtpError},
};

pub struct AlertSender {
    pub pool: PgPool,
    pub mailer: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    /// `alerts.recipients`, unless staff set recipients on the Settings page. Empty: alerts
    /// are logged, not emailed (warned about at start-up).
    pub recipients: Vec<Mailbox>,
}

#[derive(Debug, thiserror::Error)]
enum AlertError {
    #[error("cannot read the failure")]
    Database(#[source] sqlx::Error),
    #[error("cannot build the alert email")]
    Build(#[source] lettre::error::Error),
    #[error("the alert recipients set on the Settings page are not addresses: {0}")]
    Recipients(String),
    #[error(transparent)]
    Smtp(#[from] SmtpError),
}

impl JobHandler for AlertSender {
    type Payload = AlertJob;
    const QUEUE: &'static str = ALERT_QUEUE;

    async fn run(&self, job: &Job<AlertJob>) -> Result<(), JobError> {
        self.send(job.payload.failure_id).await.map_err(|error| {
            let reason = error_chain(&error);
            match error {
                AlertError::Build(_) | AlertError::Recipients(_) => JobError::Permanent(reason),
                AlertError::Smtp(smtp) if smtp.is_permanent() => JobError::Permanent(reason),
                AlertError::Smtp(_) | AlertError::Database(_) => JobError::Transient {
                    error: reason,
                    retry_after: None,
                },
            }
        })
    }

    async fn escalate(
        &self,
        job: &Job<AlertJob>,
        error: &JobError,
    ) -> Result<Escalation, sqlx::Error> {
        // The alert about a failing relay goes through that relay: it goes out once the relay
        // works again. An alert is never reported as a failure itself (that would alert about
        // alerts); the failure stays listed by the admin whatever happens to its email.
        if relay::is_failing(&error.to_string()) {
            return Ok(Escalation::KeepTrying);
        }
        tracing::error!(failure_id = job.payload.failure_id, %error, "staff alert not sent; the failure is still listed by GET /api/v1/failures");
        Ok(Escalation::Stop)
    }
}

/// Staff addresses, comma-separated, each as a mailbox may be written ("Ada <ada@example.org>").
pub(crate) fn parse_recipients(list: &str) -> Result<Vec<Mailbox>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .map(|address| {
            address
                .parse()
                .map_err(|error| format!("{address:?} is not one ({error})"))
        })
        .collect()
}

/// The failure and its booking. For a PIN that could not be revoked, the space is the one
/// the PIN was made for (the booking may have moved away from the door it still opens).
#[derive(sqlx::FromRow)]
struct FailureRow {
    kind: FailureKind,
    booking_id: Option<BookingId>,
    reason: String,
    since: DateTime<Utc>,
    attempts: i32,
    resolved: bool,
    status: Option<BookingStatus>,
    starts_at: Option<DateTime<Utc>>,
    space_name: Option<String>,
    location_name: Option<String>,
    time_zone: Option<String>,
    /// Set on the Settings page; `None`: `alerts.recipients`.
    stored_recipients: Option<String>,
}

impl AlertSender {
    async fn send(&self, failure_id: i64) -> Result<(), AlertError> {
        let Some((alert, stored)) = self.alert(failure_id).await.map_err(AlertError::Database)?
        else {
            tracing::info!(
                failure_id,
                "the failure was resolved before its alert went out"
            );
            return Ok(());
        };
        let recipients = match stored {
            Some(list) => parse_recipients(&list).map_err(AlertError::Recipients)?,
            None => self.recipients.clone(),
        };
        if recipients.is_empty() {
            tracing::warn!(failure_id, kind = ?alert.kind, booking_id = ?alert.booking_id.as_ref().map(BookingId::as_str), "staff alert not emailed: alerts.recipients is empty");
            return Ok(());
        }
        let email = alert_email::render(&alert);
        let builder = recipients
            .iter()
            .fold(Message::builder().from(self.from.clone()), |builder, to| {
                builder.to(to.clone())
            })
            // One id per failure: a send repeated after a crash can be folded by mail clients.
            .message_id(Some(format!(
                "<failure-{failure_id}@{}>",
                self.from.email.domain()
            )))
            .subject(email.subject);
        let message = builder
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .map_err(AlertError::Build)?;
        self.mailer
            .send(message)
            .await
            .map_err(|error| AlertError::Smtp(error.into()))?;
        tracing::info!(failure_id, kind = ?alert.kind, "staff alert sent");
        Ok(())
    }

    /// The failure as its alert tells it, with the recipients staff set, if any; `None` when it
    /// is resolved (or gone).
    async fn alert(&self, failure_id: i64) -> Result<Option<(Alert, Option<String>)>, sqlx::Error> {
        let row: Option<FailureRow> = sqlx::query_as(
            "SELECT f.kind, f.booking_id, f.reason, f.since, f.attempts,
                    f.resolved_at IS NOT NULL AS resolved,
                    b.status, b.starts_at, s.name AS space_name, l.name AS location_name, l.time_zone,
                    (SELECT alert_recipients FROM staff_settings
                     WHERE scope = 'everywhere' AND scope_id = '') AS stored_recipients
             FROM failures f
             LEFT JOIN bookings b ON b.booking_id = f.booking_id
             LEFT JOIN booking_pins p ON p.booking_id = f.booking_id
             LEFT JOIN spaces s ON s.space_id = CASE WHEN f.kind = 'pin_not_revoked'
                                                     THEN coalesce(p.space_id, b.space_id)
                                                     ELSE b.space_id END
             LEFT JOIN categories c ON c.category_id = s.category_id
             LEFT JOIN locations l ON l.location_id = c.location_id
             WHERE f.id = $1",
        )
        .bind(failure_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.filter(|row| !row.resolved).map(|row| {
            let booking = match (row.status, row.starts_at, row.space_name, row.location_name) {
                (Some(status), Some(starts_at), Some(space_name), Some(location_name)) => row
                    .time_zone
                    .and_then(|zone| zone.parse::<TimeZone>().ok())
                    .map(|time_zone| BookedSpace {
                        cancelled: status == BookingStatus::Cancelled,
                        space_name,
                        location_name,
                        starts_at,
                        time_zone,
                    }),
                _ => None,
            };
            let alert = Alert {
                failure_id,
                kind: row.kind,
                reason: row.reason,
                since: row.since,
                attempts: row.attempts,
                booking_id: row.booking_id,
                booking,
            };
            (alert, row.stored_recipients)
        }))
    }
}
