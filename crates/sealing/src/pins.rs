//! Door PINs at rest: `booking_pins` keeps each PIN sealed beside a keyed digest (to find a
//! PIN already live on a lock without opening every row), and the outbox and email jobs keep
//! the `pin` of a `pin.issued` payload sealed until it leaves for the broker or the patron.

use base64::{Engine, engine::general_purpose::STANDARD};
use lockbridge_domain::Pin;
use lockbridge_runtime::{
    at_rest::{AtRest, OpenError},
    configuration::{Credential, CredentialValues, RANDOM_SECRET},
    service::StartupError,
    telemetry::error_chain,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;

use crate::{KeySetting, SealError, Sealer};

pub const SETTING: KeySetting = KeySetting {
    current: "pins.encryption_key",
    previous: "pins.previous_encryption_key",
};

const ENCRYPTION_KEY: Credential = Credential {
    setting: SETTING.current,
    remedy: RANDOM_SECRET,
};

/// The `[pins]` section, read by every service that stores or shows a PIN.
#[derive(Debug, Clone, Deserialize)]
pub struct PinKeySettings {
    /// Empty until set, as every credential.
    #[serde(default)]
    pub encryption_key: SecretString,
    /// The key being rotated away from, while `lockbridge keys rotate` reseals.
    #[serde(default)]
    pub previous_encryption_key: Option<SecretString>,
}

impl PinKeySettings {
    /// The credential to check before connecting.
    pub fn credentials(&self) -> [CredentialValues<'_>; 1] {
        [ENCRYPTION_KEY.set_to(&self.encryption_key)]
    }

    pub fn sealer(&self) -> Result<PinSealer, SealError> {
        Sealer::new(
            SETTING,
            &self.encryption_key,
            self.previous_encryption_key.as_ref(),
        )
        .map(PinSealer)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoredPinsError {
    #[error("cannot read the stored PINs")]
    Database(#[from] sqlx::Error),
    #[error("the stored PINs cannot be read")]
    WrongKey(#[source] SealError),
}

/// A service whose key cannot read the stored PINs stops, saying so in one sentence.
impl From<StoredPinsError> for StartupError {
    fn from(error: StoredPinsError) -> Self {
        Self::Invalid(error_chain(&error))
    }
}

/// A PIN as `booking_pins` stores it.
pub struct SealedPin {
    pub sealed: Vec<u8>,
    pub digest: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct PinSealer(Sealer);

/// Marks a sealed JSON string, so a payload written before PINs were sealed still reads.
const SEALED_PREFIX: &str = "sealed:";

impl PinSealer {
    pub fn seal(&self, pin: &Pin) -> SealedPin {
        SealedPin {
            sealed: self.0.seal(pin.expose().as_bytes()),
            digest: self.0.digest(pin.expose().as_bytes()),
        }
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Pin, SealError> {
        pin_of(&self.0.open(sealed)?)
    }

    /// Opens a sealed PIN carried in base64, as JSON carries bytes.
    pub fn open_base64(&self, encoded: &str) -> Result<Pin, SealError> {
        let sealed = STANDARD.decode(encoded).map_err(|_| undecryptable())?;
        self.open(&sealed)
    }

    /// The digests a stored PIN equal to `pin` may have (under the current and the previous
    /// key).
    pub fn digests(&self, pin: &Pin) -> Vec<Vec<u8>> {
        self.0.digests(pin.expose().as_bytes())
    }

    /// The PIN sealed and digested anew under the current key, if the previous key sealed it.
    pub fn reseal(&self, sealed: &[u8]) -> Result<Option<SealedPin>, SealError> {
        self.0
            .open_stale(sealed)?
            .map(|plaintext| pin_of(&plaintext).map(|pin| self.seal(&pin)))
            .transpose()
    }

    /// Seals the PIN at `pointer` (e.g. `/data/pin`) of a JSON payload in place.
    pub fn seal_field(&self, payload: &mut Value, pointer: &str) {
        if let Some(field) = payload.pointer_mut(pointer)
            && let Some(pin) = field.as_str().and_then(|text| Pin::parse(text).ok())
        {
            *field = sealed_text(&self.0.seal(pin.expose().as_bytes()));
        }
    }

    /// Checked as a service starts: a key that cannot open the newest stored PIN is the wrong
    /// key (or the previous one is missing mid-rotation), better said at once, in one
    /// sentence, than by every booking's details failing.
    pub async fn check_stored(&self, pool: &PgPool) -> Result<(), StoredPinsError> {
        let newest: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT pin_sealed FROM booking_pins WHERE pin_sealed IS NOT NULL
             ORDER BY updated_at DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?;
        match newest {
            Some(sealed) => self
                .open(&sealed)
                .map(drop)
                .map_err(StoredPinsError::WrongKey),
            None => Ok(()),
        }
    }

    /// Opens the PIN at `pointer` in place; a plaintext PIN (written before sealing) stays.
    pub fn open_field(&self, payload: &mut Value, pointer: &str) -> Result<(), SealError> {
        let Some(field) = payload.pointer_mut(pointer) else {
            return Ok(());
        };
        let Some(sealed) = field.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX)) else {
            return Ok(());
        };
        *field = Value::String(self.open_base64(sealed)?.expose().to_owned());
        Ok(())
    }

    /// Brings the field under the current key: sealed anew if the previous key sealed it,
    /// sealed if it was stored in clear. Says whether it changed.
    pub fn reseal_field(&self, payload: &mut Value, pointer: &str) -> Result<bool, SealError> {
        let before = payload.pointer(pointer).cloned();
        let Some(Value::String(text)) = &before else {
            return Ok(false);
        };
        let Some(encoded) = text.strip_prefix(SEALED_PREFIX) else {
            self.seal_field(payload, pointer);
            return Ok(payload.pointer(pointer) != before.as_ref());
        };
        let sealed = STANDARD.decode(encoded).map_err(|_| undecryptable())?;
        let Some(resealed) = self.0.reseal(&sealed)? else {
            return Ok(false);
        };
        if let Some(field) = payload.pointer_mut(pointer) {
            *field = sealed_text(&resealed);
        }
        Ok(true)
    }
}

/// A sealed PIN as a JSON payload holds it.
fn sealed_text(sealed: &[u8]) -> Value {
    Value::String(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
}

/// The PIN an opened value holds.
fn pin_of(plaintext: &[u8]) -> Result<Pin, SealError> {
    std::str::from_utf8(plaintext)
        .ok()
        .and_then(|text| Pin::parse(text).ok())
        .ok_or_else(undecryptable)
}

fn undecryptable() -> SealError {
    SealError::Undecryptable {
        setting: SETTING.current,
        previous: SETTING.previous,
    }
}

/// Where a `pin.issued` envelope holds its PIN.
const EVENT_PIN: &str = "/data/pin";

/// The PIN of a `pin.issued` event in the outbox or an email job.
impl AtRest for PinSealer {
    fn seal(&self, payload: &mut Value) {
        self.seal_field(payload, EVENT_PIN);
    }

    fn open(&self, payload: &mut Value) -> Result<(), OpenError> {
        Ok(self.open_field(payload, EVENT_PIN)?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(current: u8, previous: Option<u8>) -> PinKeySettings {
        let key = |byte| SecretString::from(STANDARD.encode([byte; 32]));
        PinKeySettings {
            encryption_key: key(current),
            previous_encryption_key: previous.map(key),
        }
    }

    fn pin() -> Pin {
        Pin::parse("482193").unwrap()
    }

    #[test]
    fn a_sealed_pin_opens_and_its_digest_is_found() {
        let sealer = settings(1, None).sealer().unwrap();
        let stored = sealer.seal(&pin());
        assert_eq!(sealer.open(&stored.sealed).unwrap(), pin());
        assert!(sealer.digests(&pin()).contains(&stored.digest));
        assert!(
            !sealer
                .digests(&Pin::parse("482194").unwrap())
                .contains(&stored.digest)
        );
    }

    #[test]
    fn after_rotation_old_pins_open_are_found_and_reseal() {
        let stored = settings(1, None).sealer().unwrap().seal(&pin());
        let rotated = settings(2, Some(1)).sealer().unwrap();
        assert!(rotated.digests(&pin()).contains(&stored.digest));
        let resealed = rotated
            .reseal(&stored.sealed)
            .unwrap()
            .expect("was under the old key");
        assert!(rotated.reseal(&resealed.sealed).unwrap().is_none());
        let new_only = settings(2, None).sealer().unwrap();
        assert_eq!(new_only.open(&resealed.sealed).unwrap(), pin());
        assert_eq!(new_only.digests(&pin()), vec![resealed.digest]);
    }

    #[test]
    fn a_payload_field_seals_opens_and_reseals() {
        let sealer = settings(1, None).sealer().unwrap();
        let mut payload = json!({"data": {"pin": "482193", "booking_id": "b-1"}});
        sealer.seal_field(&mut payload, "/data/pin");
        let sealed = payload["data"]["pin"].as_str().unwrap().to_owned();
        assert!(sealed.starts_with("sealed:") && !sealed.contains("482193"));

        let rotated = settings(2, Some(1)).sealer().unwrap();
        let mut legacy = json!({"data": {"pin": "482193"}});
        assert!(
            rotated.reseal_field(&mut legacy, "/data/pin").unwrap(),
            "sealed now"
        );
        assert!(!rotated.reseal_field(&mut legacy, "/data/pin").unwrap());
        assert!(rotated.reseal_field(&mut payload, "/data/pin").unwrap());
        assert!(!rotated.reseal_field(&mut payload, "/data/pin").unwrap());
        assert!(
            sealer
                .clone()
                .open_field(&mut payload.clone(), "/data/pin")
                .is_err()
        );

        rotated.open_field(&mut payload, "/data/pin").unwrap();
        assert_eq!(payload["data"]["pin"], "482193");
        assert_eq!(payload["data"]["booking_id"], "b-1");
    }

    #[test]
    fn a_plaintext_or_missing_field_is_left_as_it_is() {
        let sealer = settings(1, None).sealer().unwrap();
        let mut legacy = json!({"data": {"pin": "482193"}});
        sealer.open_field(&mut legacy, "/data/pin").unwrap();
        assert_eq!(legacy["data"]["pin"], "482193");
        let mut other = json!({"data": {"booking_id": "b-1"}});
        sealer.seal_field(&mut other, "/data/pin");
        sealer.open_field(&mut other, "/data/pin").unwrap();
        assert_eq!(other, json!({"data": {"booking_id": "b-1"}}));
    }

    #[test]
    fn a_damaged_sealed_field_is_an_error_naming_the_setting() {
        let sealer = settings(1, None).sealer().unwrap();
        let mut damaged = json!({"data": {"pin": "sealed:!!!"}});
        let error = sealer.open_field(&mut damaged, "/data/pin").unwrap_err();
        assert!(error.to_string().contains("pins.encryption_key"));
    }
}
