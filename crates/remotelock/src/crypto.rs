//! Encryption at rest for the RemoteLock tokens (design §6): AES-256-GCM under
//! `remotelock.token_encryption_key`. A stored value is the random 96-bit nonce followed by the
//! ciphertext and its tag, so a damaged value or a different key is detected, never misread.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Key, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString, zeroize::Zeroizing};

const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    // The decoding error is left out on purpose: it would quote part of the key.
    #[error(
        "remotelock.token_encryption_key must be 32 random bytes in base64 \
         (generate one with `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error(
        "a stored token cannot be decrypted: it was encrypted under another \
         remotelock.token_encryption_key, or it is damaged"
    )]
    Undecryptable,
}

#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl TokenCipher {
    /// `key` is the base64 of 32 bytes, as `remotelock.token_encryption_key` holds it.
    pub fn new(key: &SecretString) -> Result<Self, CipherError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(key.expose_secret().trim())
                .map_err(|_| CipherError::BadKey)?,
        );
        if bytes.len() != 32 {
            return Err(CipherError::BadKey);
        }
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    pub fn encrypt(&self, plaintext: &SecretString) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.expose_secret().as_bytes())
            // AES-GCM only refuses inputs of many gigabytes.
            .expect("a token is small enough to encrypt");
        let mut stored = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&ciphertext);
        stored
    }

    pub fn decrypt(&self, stored: &[u8]) -> Result<SecretString, CipherError> {
        if stored.len() < NONCE_LEN {
            return Err(CipherError::Undecryptable);
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), ciphertext)
                .map_err(|_| CipherError::Undecryptable)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CipherError::Undecryptable)?;
        Ok(SecretString::from(text))
    }
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCipher(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(STANDARD.encode([byte; 32]))
    }

    fn token() -> SecretString {
        SecretString::from("access-token-0123456789")
    }

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let cipher = TokenCipher::new(&key(7)).unwrap();
        let first = cipher.encrypt(&token());
        let second = cipher.encrypt(&token());
        assert_ne!(first, second, "the nonce must differ");
        assert!(!first.windows(6).any(|w| w == b"access"));
        assert_eq!(
            cipher.decrypt(&first).unwrap().expose_secret(),
            token().expose_secret()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let cipher = TokenCipher::new(&key(7)).unwrap();
        let mut stored = cipher.encrypt(&token());
        let last = stored.len() - 1;
        stored[last] ^= 1;
        assert_eq!(
            cipher.decrypt(&stored).unwrap_err(),
            CipherError::Undecryptable
        );
        assert_eq!(
            cipher.decrypt(&stored[..5]).unwrap_err(),
            CipherError::Undecryptable
        );
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let stored = TokenCipher::new(&key(7)).unwrap().encrypt(&token());
        let other = TokenCipher::new(&key(8)).unwrap();
        assert_eq!(
            other.decrypt(&stored).unwrap_err(),
            CipherError::Undecryptable
        );
    }

    #[test]
    fn malformed_keys_are_refused_naming_the_setting() {
        let short = SecretString::from(STANDARD.encode([1u8; 16]));
        for bad in [short, SecretString::from("not base64!")] {
            let error = TokenCipher::new(&bad).unwrap_err();
            assert_eq!(error, CipherError::BadKey);
            assert!(
                error
                    .to_string()
                    .contains("remotelock.token_encryption_key")
            );
        }
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", TokenCipher::new(&key(7)).unwrap()),
            "TokenCipher(****)"
        );
    }
}
