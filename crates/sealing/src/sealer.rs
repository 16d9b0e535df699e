//! Sealing and opening values under a current key, opening under the previous one too.
//!
//! A sealed value is the random 96-bit nonce followed by the ciphertext and its tag, so a
//! damaged value or one sealed under an unknown key is detected, never misread.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, AeadCore, OsRng},
};
use secrecy::{ExposeSecret, SecretString, zeroize::Zeroizing};

use crate::key::{Key, KeySetting};

const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "{setting} must be 32 random bytes in base64 (generate one with `openssl rand -base64 32`)"
    )]
    BadKey { setting: &'static str },
    #[error(
        "a stored value cannot be decrypted: it was encrypted under neither {setting} nor \
         {previous}, or it is damaged"
    )]
    Undecryptable {
        setting: &'static str,
        previous: &'static str,
    },
}

#[derive(Clone)]
pub struct Sealer {
    setting: KeySetting,
    current: Key,
    previous: Option<Key>,
}

/// Which key opened a value.
enum Opened {
    Current,
    Previous,
}

impl Sealer {
    /// Parses the current key and, when one is set, the previous key of `setting`.
    pub fn new(
        setting: KeySetting,
        current: &SecretString,
        previous: Option<&SecretString>,
    ) -> Result<Self, SealError> {
        let current = Key::parse(current, setting.current)?;
        let previous = previous
            .filter(|key| !key.expose_secret().trim().is_empty())
            .map(|key| Key::parse(key, setting.previous))
            .transpose()?;
        Ok(Self {
            setting,
            current,
            previous,
        })
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .current
            .cipher
            .encrypt(&nonce, plaintext)
            // AES-GCM only refuses inputs of many gigabytes.
            .expect("a sealed value is small enough to encrypt");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_telling(sealed).map(|(plaintext, _)| plaintext)
    }

    pub fn seal_secret(&self, secret: &SecretString) -> Vec<u8> {
        self.seal(secret.expose_secret().as_bytes())
    }

    pub fn open_secret(&self, sealed: &[u8]) -> Result<SecretString, SealError> {
        let plaintext = self.open(sealed)?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| self.undecryptable())?;
        Ok(SecretString::from(text))
    }

    /// The value sealed anew under the current key if the previous key sealed it; `None` if
    /// it is sealed under the current key already.
    pub fn reseal(&self, sealed: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        Ok(self
            .open_stale(sealed)?
            .map(|plaintext| self.seal(&plaintext)))
    }

    /// The value opened if the previous key sealed it (it is due for resealing); `None` if the
    /// current key did.
    pub fn open_stale(&self, sealed: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, SealError> {
        match self.open_telling(sealed)? {
            (_, Opened::Current) => Ok(None),
            (plaintext, Opened::Previous) => Ok(Some(plaintext)),
        }
    }

    /// Digests of `value` under the current key, then the previous: a lookup matches stored
    /// digests whether or not they were resealed yet.
    pub fn digests(&self, value: &[u8]) -> Vec<Vec<u8>> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| key.digest(value))
            .collect()
    }

    /// The digest of `value` under the current key, the one to store.
    pub fn digest(&self, value: &[u8]) -> Vec<u8> {
        self.current.digest(value)
    }

    fn open_telling(&self, sealed: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Opened), SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(self.undecryptable());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::from_slice(nonce);
        let under = |key: &Key| {
            key.cipher
                .decrypt(nonce, ciphertext)
                .ok()
                .map(Zeroizing::new)
        };
        if let Some(plaintext) = under(&self.current) {
            return Ok((plaintext, Opened::Current));
        }
        self.previous
            .as_ref()
            .and_then(under)
            .map(|plaintext| (plaintext, Opened::Previous))
            .ok_or_else(|| self.undecryptable())
    }

    fn undecryptable(&self) -> SealError {
        SealError::Undecryptable {
            setting: self.setting.current,
            previous: self.setting.previous,
        }
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer({}: ****)", self.setting.current)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::STANDARD};

    use super::*;

    const SETTING: KeySetting = KeySetting {
        current: "test.encryption_key",
        previous: "test.previous_encryption_key",
    };

    fn key(byte: u8) -> SecretString {
        SecretString::from(STANDARD.encode([byte; 32]))
    }

    fn sealer(current: u8, previous: Option<u8>) -> Sealer {
        Sealer::new(SETTING, &key(current), previous.map(key).as_ref()).unwrap()
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let sealer = sealer(7, None);
        let first = sealer.seal(b"access-token-0123456789");
        let second = sealer.seal(b"access-token-0123456789");
        assert_ne!(first, second, "the nonce must differ");
        assert!(!first.windows(6).any(|w| w == b"access"));
        assert_eq!(&*sealer.open(&first).unwrap(), b"access-token-0123456789");
    }

    #[test]
    fn tampering_and_truncation_are_detected() {
        let sealer = sealer(7, None);
        let mut sealed = sealer.seal(b"482193");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        for bad in [&sealed[..], &sealed[..5]] {
            let error = sealer.open(bad).unwrap_err();
            assert!(matches!(error, SealError::Undecryptable { .. }));
            assert!(error.to_string().contains("test.encryption_key"));
        }
    }

    #[test]
    fn another_key_cannot_open() {
        let sealed = sealer(7, None).seal(b"482193");
        assert!(sealer(8, None).open(&sealed).is_err());
    }

    #[test]
    fn the_previous_key_opens_and_reseal_moves_values_to_the_current() {
        let old = sealer(7, None).seal(b"482193");
        let rotated = sealer(8, Some(7));
        assert_eq!(&*rotated.open(&old).unwrap(), b"482193");
        let resealed = rotated
            .reseal(&old)
            .unwrap()
            .expect("sealed under the previous key");
        assert_eq!(rotated.reseal(&resealed).unwrap(), None, "already current");
        assert_eq!(&*sealer(8, None).open(&resealed).unwrap(), b"482193");
    }

    #[test]
    fn digests_are_keyed_and_match_under_either_key() {
        assert_eq!(
            sealer(7, None).digest(b"482193"),
            sealer(7, None).digest(b"482193")
        );
        assert_ne!(
            sealer(7, None).digest(b"482193"),
            sealer(8, None).digest(b"482193")
        );
        assert_ne!(
            sealer(7, None).digest(b"482193"),
            sealer(7, None).digest(b"482194")
        );
        let old = sealer(7, None).digest(b"482193");
        assert!(sealer(8, Some(7)).digests(b"482193").contains(&old));
    }

    #[test]
    fn malformed_keys_are_refused_naming_the_setting() {
        let short = SecretString::from(STANDARD.encode([1u8; 16]));
        for bad in [short, SecretString::from("not base64!")] {
            let error = Sealer::new(SETTING, &bad, None).unwrap_err();
            assert_eq!(
                error,
                SealError::BadKey {
                    setting: SETTING.current
                }
            );
            let error = Sealer::new(SETTING, &key(1), Some(&bad)).unwrap_err();
            assert_eq!(
                error,
                SealError::BadKey {
                    setting: SETTING.previous
                }
            );
        }
        // An empty previous key is no previous key.
        Sealer::new(SETTING, &key(1), Some(&SecretString::from(""))).unwrap();
    }

    #[test]
    fn debug_hides_the_keys() {
        assert_eq!(
            format!("{:?}", sealer(7, Some(8))),
            "Sealer(test.encryption_key: ****)"
        );
    }
}
