//! One encryption key as the configuration holds it: the base64 of 32 random bytes.

use aes_gcm::{Aes256Gcm, Key as AesKey, KeyInit};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString, zeroize::Zeroizing};
use sha2::Sha256;

use crate::SealError;

/// The settings that hold one family of keys: the current one, and the previous one kept
/// while stored values are resealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetting {
    pub current: &'static str,
    pub previous: &'static str,
}

/// A parsed key: the cipher, and a second key derived from it for digests, so a digest
/// never reuses the encryption key itself.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) cipher: Aes256Gcm,
    pub(crate) digest: Hmac<Sha256>,
}

/// Labels the digest key's derivation: bump it and every digest changes.
const DIGEST_LABEL: &[u8] = b"lockbridge digest key v1";

impl Key {
    pub(crate) fn parse(value: &SecretString, setting: &'static str) -> Result<Self, SealError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(value.expose_secret().trim())
                // The decoding error is left out on purpose: it would quote part of the key.
                .map_err(|_| SealError::BadKey { setting })?,
        );
        if bytes.len() != 32 {
            return Err(SealError::BadKey { setting });
        }
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(&bytes).expect("HMAC takes a key of any length");
        derive.update(DIGEST_LABEL);
        let digest_key = Zeroizing::new(derive.finalize().into_bytes().to_vec());
        Ok(Self {
            cipher: Aes256Gcm::new(AesKey::<Aes256Gcm>::from_slice(&bytes)),
            digest: <Hmac<Sha256> as Mac>::new_from_slice(&digest_key)
                .expect("HMAC takes a key of any length"),
        })
    }

    /// A keyed digest of `value`: equal values give equal digests under one key, so a stored
    /// digest can be looked up, while the value cannot be read back from it.
    pub(crate) fn digest(&self, value: &[u8]) -> Vec<u8> {
        let mut mac = self.digest.clone();
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }
}
