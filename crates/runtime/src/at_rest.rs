//! Payloads that hold a secret while they wait in the database: a `pin.issued` event in the
//! outbox, the email job made of it. The secret is sealed when the payload is stored and
//! opened only as it leaves (for the broker, for the email), so neither a database dump nor a
//! backup shows it. This crate only knows where that happens; `lockbridge-sealing` knows how.

use serde_json::Value;

pub type OpenError = Box<dyn std::error::Error + Send + Sync>;

pub trait AtRest: Send + Sync {
    /// Seals the secret fields of `payload` in place.
    fn seal(&self, payload: &mut Value);
    /// Opens them in place; a payload stored before sealing existed stays as it is.
    fn open(&self, payload: &mut Value) -> Result<(), OpenError>;
}
