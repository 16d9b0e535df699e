//! Whose fault it is when the SMTP relay does not take an email (issue 5, item 8). A
//! recipient the relay refuses is that one email's problem: retrying cannot help, so staff are
//! told about it and the job stops. A relay that refuses our credentials, will not relay for
//! us, or cannot be reached fails every email alike: those are retried, never dropped, and
//! reported once as a fault of the whole system.
//!
//! lettre does not say which command was refused, so the reply code and its RFC 3463
//! enhanced status ("5.1.1") decide.

use lettre::transport::smtp::Error;

/// How a [`SmtpError::Relay`] reads, so a failed job can be told apart by its error text.
const RELAY_FAILING: &str = "the SMTP relay is failing";

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("the SMTP relay refused the recipient's address")]
    Refused(#[source] Error),
    #[error("{RELAY_FAILING}")]
    Relay(#[source] Error),
    #[error("the SMTP relay did not take the email")]
    Other(#[source] Error),
}

impl From<Error> for SmtpError {
    fn from(error: Error) -> Self {
        match fault(&error) {
            Fault::Recipient => Self::Refused(error),
            Fault::Relay => Self::Relay(error),
            Fault::Email => Self::Other(error),
        }
    }
}

impl SmtpError {
    /// Whether sending the same email again cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Refused(_) => true,
            Self::Relay(_) => false,
            Self::Other(error) => error.is_permanent(),
        }
    }
}

/// Whether a job failed because the relay is failing, whichever email it was sending.
pub fn is_failing(error: &str) -> bool {
    error.starts_with(RELAY_FAILING)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Refused at RCPT: the address will not take email from this relay.
    Recipient,
    /// The relay fails for every email: credentials, relay permission, connection, TLS.
    Relay,
    /// This email was refused for another reason; lettre's permanent/transient split holds.
    Email,
}

fn fault(error: &Error) -> Fault {
    // No reply at all (connection, TLS, timeout, an unreadable answer, no AUTH mechanism we
    // share): nothing about the email is known to be wrong.
    let Some(code) = error.status() else {
        return Fault::Relay;
    };
    // The relay's reply text is the error's source.
    let reply = std::error::Error::source(error).map_or_else(String::new, ToString::to_string);
    refusal(u16::from(code), &reply)
}

/// The fault a negative reply `code` with text `reply` shows.
fn refusal(code: u16, reply: &str) -> Fault {
    let (_, subject, detail) = enhanced_status(reply).unwrap_or_default();
    match (code, subject, detail) {
        // 421 closing, 454 temporary authentication failure, 4.7.x temporary policy.
        (421 | 454, ..) | (400..=499, 7, _) => Fault::Relay,
        (400..=499, ..) => Fault::Email,
        // 5.1.7 and 5.1.8: our own sender address (smtp.from) is refused.
        (_, 1, 7 | 8) => Fault::Relay,
        // 5.1.x addressing, 5.2.x the mailbox. Postfix says "User unknown in relay recipient
        // table", so this comes before the "relay" wording below.
        (_, 1 | 2, _) => Fault::Recipient,
        // 530/535 and 5.7.8 authentication, 5.7.1 and 554 relaying denied: security policy.
        (530 | 534 | 535 | 538 | 554, ..) | (_, 7, _) => Fault::Relay,
        _ if reply.to_ascii_lowercase().contains("relay") => Fault::Relay,
        (550 | 551 | 553, ..) => Fault::Recipient,
        _ => Fault::Email,
    }
}

/// "5.1.1 <a@b> User unknown" → (5, 1, 1).
fn enhanced_status(reply: &str) -> Option<(u16, u16, u16)> {
    let mut parts = reply.split_whitespace().next()?.splitn(3, '.');
    let mut number = || parts.next()?.parse::<u16>().ok();
    let status = (number()?, number()?, number()?);
    matches!(status.0, 2 | 4 | 5).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_recipient_is_the_emails_fault() {
        for (code, reply) in [
            (550, "5.1.1 <a@example.test> User unknown"),
            (
                550,
                "5.1.1 <a@example.test> User unknown in relay recipient table",
            ),
            (552, "5.2.2 Mailbox full"),
            (550, "No such user here"),
            (553, "mailbox name not allowed"),
            (551, "User not local"),
        ] {
            assert_eq!(refusal(code, reply), Fault::Recipient, "{code} {reply}");
        }
    }

    #[test]
    fn authentication_relay_denied_and_policy_are_the_relays_fault() {
        for (code, reply) in [
            (535, "5.7.8 Authentication credentials invalid"),
            (535, "Authentication failed"),
            (530, "5.7.0 Authentication required"),
            (554, "5.7.1 <a@example.test>: Relay access denied"),
            (550, "5.7.1 Unable to relay"),
            (550, "Relaying denied"),
            (554, "Transaction failed"),
            (553, "5.1.8 Sender address rejected"),
            (421, "4.3.2 Service shutting down"),
            (454, "4.7.0 Temporary authentication failure"),
        ] {
            assert_eq!(refusal(code, reply), Fault::Relay, "{code} {reply}");
        }
    }

    #[test]
    fn other_refusals_are_the_emails_own() {
        assert_eq!(refusal(452, "4.2.2 Mailbox full, try later"), Fault::Email);
        assert_eq!(refusal(450, "Greylisted"), Fault::Email);
        assert_eq!(refusal(552, "5.3.4 Message too big"), Fault::Email);
    }

    #[test]
    fn enhanced_status_is_read_from_the_reply() {
        assert_eq!(enhanced_status("5.1.1 <a@b> User unknown"), Some((5, 1, 1)));
        assert_eq!(enhanced_status("4.7.0 try later"), Some((4, 7, 0)));
        assert_eq!(enhanced_status("User unknown"), None);
        assert_eq!(enhanced_status("1.2.3 not a status"), None);
    }
}
