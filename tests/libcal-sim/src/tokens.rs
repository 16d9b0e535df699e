//! Access tokens of the client-credentials flow: opaque, one lifetime, no refresh tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distributions::Alphanumeric;

pub struct Tokens {
    ttl: Duration,
    expiry: Mutex<HashMap<String, Instant>>,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            expiry: Mutex::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self) -> String {
        let token: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        let expires = Instant::now() + self.ttl;
        self.expiry
            .lock()
            .expect("tokens poisoned")
            .insert(token.clone(), expires);
        token
    }

    pub fn is_live(&self, token: &str) -> bool {
        let expiry = self.expiry.lock().expect("tokens poisoned");
        expiry.get(token).is_some_and(|&at| Instant::now() < at)
    }

    /// Every token issued so far stops working (expiry or revocation look alike to a client).
    pub fn revoke_all(&self) {
        self.expiry.lock().expect("tokens poisoned").clear();
    }
}
