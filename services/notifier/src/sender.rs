//! The email job: sends the PIN email through the SMTP relay and records the send, so a job
//! that runs again (a second event for the same PIN, a retry after a crash) does not email the
//! patron twice. A relay that fails every email is reported once, as a fault of the whole
//! system, and its emails wait for it however long that takes (see `relay`).

use backon::{ExponentialBuilder, Retryable};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    address::AddressError,
    message::{Mailbox, MultiPart},
};
use lockbridge_domain::{
    BookingStatus, PinState,
    events::{Envelope, PinIssuedData},
};
use lockbridge_runtime::{
    at_rest::AtRest,
    jobs::{self, Escalation, Job, JobError, JobHandler},
    telemetry::error_chain,
};
use lockbridge_sealing::pins::PinSealer;
use lockbridge_work::failures::{self, FailureKind, Report, RetryWith};
use sqlx::PgPool;

use crate::{
    email,
    relay::{self, SmtpError},
};

/// The attempt at which a failing relay is reported to staff: one failed attempt may be a
/// blip, three in a row (a few seconds apart at least) are not.
const RELAY_ALERT_ATTEMPT: i32 = 3;

/// An email job carries its whole event: it is what the email says, and its id names the send.
pub type EmailJob = Envelope<PinIssuedData>;

/// One email per PIN version of a booking.
pub fn job_key(pin: &PinIssuedData) -> String {
    format!("{}:{}", pin.booking_id, pin.pin_version)
}

pub struct PinEmailSender {
    pub pool: PgPool,
    pub mailer: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    /// Opens the PIN each job holds sealed.
    pub pins: PinSealer,
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the patron's email address is not valid")]
    Recipient(#[source] AddressError),
    #[error("cannot build the email")]
    Build(#[source] lettre::error::Error),
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    #[error("cannot read or record sent emails")]
    Database(#[source] sqlx::Error),
}

impl JobHandler for PinEmailSender {
    type Payload = EmailJob;
    const QUEUE: &'static str = "email";

    fn at_rest(&self) -> Option<&dyn AtRest> {
        Some(&self.pins)
    }

    async fn run(&self, job: &Job<EmailJob>) -> Result<(), JobError> {
        let email = &job.payload;
        jobs::record_booking(
            email.data.booking_id.as_str(),
            &email.correlation_id,
            email.traceparent.as_ref(),
        );
        let Err(error) = self.send(&job.payload).await else {
            return Ok(());
        };
        let recipient = &job.payload.data.patron.email;
        let failed = job_error(&error, recipient);
        counted("failed");
        if matches!(error, SendError::Smtp(SmtpError::Relay(_)))
            && job.attempt >= RELAY_ALERT_ATTEMPT
        {
            self.report_relay(&failed, job.attempt)
                .await
                .map_err(|error| job_error(&SendError::Database(error), recipient))?;
        }
        Err(failed)
    }

    async fn escalate(
        &self,
        job: &Job<EmailJob>,
        error: &JobError,
    ) -> Result<Escalation, sqlx::Error> {
        // Not this email's fault: the relay's own failure, open since the third attempt, says
        // it all, and the email goes out once the relay works again.
        if relay::is_failing(&error.to_string()) {
            return Ok(Escalation::KeepTrying);
        }
        let pin = &job.payload.data;
        let reason = format!(
            "the PIN email to the patron was given up: {error}. Tell them their PIN another way \
             (the admin shows it)"
        );
        let mut tx = self.pool.begin().await?;
        failures::report(
            &mut tx,
            Report {
                kind: FailureKind::EmailNotSent,
                booking_id: Some(&pin.booking_id),
                reason: &reason,
                attempts: job.attempt,
                retry: RetryWith::Job {
                    queue: Self::QUEUE,
                    key: &job.key,
                },
            },
        )
        .await?;
        tx.commit().await?;
        counted("given_up");
        Ok(Escalation::Stop)
    }
}

impl PinEmailSender {
    async fn send(&self, event: &EmailJob) -> Result<(), SendError> {
        let pin = &event.data;
        if let Some(reason) = self.needless(pin).await.map_err(SendError::Database)? {
            tracing::info!(booking_id = %pin.booking_id, pin_version = pin.pin_version, reason, "PIN email not sent");
            counted("not_needed");
            return Ok(());
        }
        let (message, message_id) = self.message(event)?;
        self.mailer
            .send(message)
            .await
            .map_err(|error| SendError::Smtp(error.into()))?;
        // The email is out: try hard to record it, since a job that fails now would send it again.
        (|| self.record(event, &message_id))
            .retry(ExponentialBuilder::default())
            .await
            .map_err(SendError::Database)?;
        tracing::info!(booking_id = %pin.booking_id, pin_version = pin.pin_version, %message_id, "PIN email sent");
        counted("sent");
        Ok(())
    }

    /// Why this email must not go out, if it must not: it went out already, or — it waited
    /// while the SMTP relay was down — the booking was cancelled, or the PIN has since changed
    /// or stopped working (the provisioner's `booking_pins` record is the truth about the
    /// booking's PIN, and the booking's own status may be ahead of it).
    async fn needless(&self, pin: &PinIssuedData) -> Result<Option<&'static str>, sqlx::Error> {
        let (sent, status, state, current): (
            bool,
            Option<BookingStatus>,
            Option<PinState>,
            Option<i32>,
        ) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM sent_emails WHERE booking_id = $1 AND pin_version = $2),
                    (SELECT status FROM bookings WHERE booking_id = $1),
                    (SELECT state FROM booking_pins WHERE booking_id = $1),
                    (SELECT pin_version FROM booking_pins WHERE booking_id = $1)",
        )
        .bind(pin.booking_id.as_str())
        .bind(pin.pin_version)
        .fetch_one(&self.pool)
        .await?;
        Ok(if sent {
            Some("already sent")
        } else if status.is_some_and(|status| status != BookingStatus::Confirmed) {
            Some("the booking is no longer confirmed")
        } else if state.is_some_and(|state| state != PinState::Issued) {
            Some("the PIN no longer works")
        } else if current.is_some_and(|current| current > pin.pin_version) {
            Some("a newer PIN email supersedes it")
        } else {
            None
        })
    }

    fn message(&self, event: &EmailJob) -> Result<(Message, String), SendError> {
        let pin = &event.data;
        let to = Mailbox::new(
            Some(pin.patron.name.clone()),
            pin.patron.email.parse().map_err(SendError::Recipient)?,
        );
        let email = email::render(pin);
        // Derived from the event, so a send repeated after a crash carries the same id and mail
        // clients can fold the two.
        let message_id = format!("<{}@{}>", event.event_id, self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .map_err(SendError::Build)?;
        Ok((message, message_id))
    }

    /// Records the send, and resolves what it proves fixed: this email's failure, if staff
    /// retried it, and the relay's, since the relay took it. One statement, atomic on its own:
    /// a transaction around an insert and two updates cost four more round trips per email.
    async fn record(&self, event: &EmailJob, message_id: &str) -> Result<(), sqlx::Error> {
        let pin = &event.data;
        // Answers how long the booking took from intake to this email, for the histogram.
        // The booking's failure and the system-wide one (empty subject) are resolved by a
        // data-modifying CTE, which runs whether or not the insert finds the email recorded.
        let since_intake: Option<Option<f64>> = sqlx::query_scalar(&format!(
            "WITH resolved AS ({resolving})
             INSERT INTO sent_emails (booking_id, pin_version, event_id, recipient, message_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
             RETURNING (SELECT extract(epoch FROM now() - created_at)::float8
                        FROM bookings WHERE booking_id = $1)",
            resolving = failures::resolving("$6", "$1, ''")
        ))
        .bind(pin.booking_id.as_str())
        .bind(pin.pin_version)
        .bind(event.event_id)
        .bind(&pin.patron.email)
        .bind(message_id)
        .bind(FailureKind::EmailNotSent)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(Some(seconds)) = since_intake {
            metrics::histogram!("lockbridge_intake_to_email_seconds").record(seconds);
        }
        Ok(())
    }

    /// The relay fails every email, not this one: one failure for the whole system, which a
    /// staff retry answers by running every waiting email again.
    async fn report_relay(&self, error: &JobError, attempts: i32) -> Result<(), sqlx::Error> {
        let reason = format!(
            "PIN emails cannot be sent: {error}. They wait and go out once the relay takes them"
        );
        let mut tx = self.pool.begin().await?;
        failures::report(
            &mut tx,
            Report {
                kind: FailureKind::EmailNotSent,
                booking_id: None,
                reason: &reason,
                attempts,
                retry: RetryWith::Queue(Self::QUEUE),
            },
        )
        .await?;
        tx.commit().await
    }
}

/// Counts what became of a PIN email: `sent`, `not_needed`, `failed` (an attempt that will
/// be retried or escalated) or `given_up`.
fn counted(outcome: &'static str) {
    metrics::counter!("lockbridge_emails_total", "kind" => "pin", "outcome" => outcome)
        .increment(1);
}

/// Only a refused recipient, another permanent (5xx) refusal of this email or an unusable
/// message stops the job: a relay that is down, slow, misconfigured or answering 4xx gets
/// another try later.
fn job_error(error: &SendError, recipient: &str) -> JobError {
    // Relays quote the recipient in their answers; the reason is logged and stored.
    let reason = error_chain(error).replace(recipient, &mask(recipient));
    match error {
        SendError::Recipient(_) | SendError::Build(_) => JobError::Permanent(reason),
        SendError::Smtp(smtp) if smtp.is_permanent() => JobError::Permanent(reason),
        SendError::Smtp(_) | SendError::Database(_) => JobError::Transient {
            error: reason,
            retry_after: None,
        },
    }
}

/// "a***@example.edu": enough to tell patrons apart in a log, not enough to write to them.
fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask("ada@example.edu"), "a***@example.edu");
        assert_eq!(mask("not an address"), "***");
    }

    #[test]
    fn a_bad_recipient_is_permanent_and_not_quoted() {
        let recipient = "ada@@example.edu";
        let parse_error = recipient.parse::<lettre::Address>().unwrap_err();
        let error = job_error(&SendError::Recipient(parse_error), recipient);
        assert!(matches!(error, JobError::Permanent(_)), "{error:?}");
        assert!(!error.to_string().contains(recipient), "{error}");
    }

    #[test]
    fn a_database_failure_is_transient() {
        let error = job_error(&SendError::Database(sqlx::Error::PoolTimedOut), "a@b.c");
        assert!(matches!(error, JobError::Transient { .. }), "{error:?}");
    }
}
