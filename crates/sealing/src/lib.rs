//! Encryption at rest for what lockbridge keeps but no database dump or backup may reveal:
//! the RemoteLock tokens and the door PINs (design §6).
//!
//! Each is sealed with AES-256-GCM under a key from the configuration. A key can be rotated
//! without stopping anything: the new key becomes current, the old one stays as the previous
//! key (values sealed under either open), and `lockbridge keys rotate` reseals every stored
//! value under the current key, after which the previous key can go.

mod key;
pub mod pins;
mod sealer;

pub use key::KeySetting;
pub use sealer::{SealError, Sealer};
