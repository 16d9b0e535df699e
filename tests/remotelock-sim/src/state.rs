//! Everything the request handlers share.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{NaiveDateTime, Utc};
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::catalog::Catalog;
use crate::config::SimConfig;
use crate::directory::{
    Access, AccessPerson, AccessSnapshot, Accessible, AccessibleType, Directory, GuestSnapshot,
    PersonKind,
};
use crate::faults::FaultQueue;
use crate::notification_records::NotificationBook;
use crate::pin_conflicts::PinRefusals;
use crate::pins::PinPolicy;
use crate::rate_limit::RateLimiter;
use crate::request_log::RequestLog;
use crate::tokens::Tokens;
use crate::webhooks::Webhooks;

pub type AppState = Arc<SimState>;

pub struct SimState {
    pub config: SimConfig,
    /// Where the simulator listens, e.g. `http://127.0.0.1:4010/`.
    pub base_url: Url,
    pub catalog: Catalog,
    /// The seeded account (the catalog's) and any a test added.
    pub accounts: Accounts,
    pub pins: PinPolicy,
    pub pin_refusals: PinRefusals,
    directory: Mutex<Directory>,
    /// Taken after the directory when both are needed.
    notifications: Mutex<NotificationBook>,
    pub webhooks: Webhooks,
    pub tokens: Tokens,
    pub rate_limiter: RateLimiter,
    pub faults: FaultQueue,
    pub requests: RequestLog,
    /// Cancelled on shutdown; also releases requests held by a `Timeout` fault.
    pub shutdown: CancellationToken,
}

impl SimState {
    pub fn new(config: SimConfig, base_url: Url) -> Self {
        let catalog = Catalog::seeded(Utc::now());
        Self {
            base_url,
            accounts: Accounts::new(catalog.account.clone()),
            pins: PinPolicy::new(config.pin_digits.clone(), config.reject_guessable_pins),
            pin_refusals: PinRefusals::default(),
            directory: Mutex::new(Directory::new(&catalog)),
            notifications: Mutex::default(),
            webhooks: Webhooks::new(config.webhook_tls_routes.clone(), config.webhook_timeout),
            tokens: Tokens::new(config.access_token_ttl),
            rate_limiter: RateLimiter::new(config.rate_limit_per_minute, config.rate_limit_window),
            faults: FaultQueue::default(),
            requests: RequestLog::default(),
            shutdown: CancellationToken::new(),
            catalog,
            config,
        }
    }

    /// Held for the whole of a handler's check-then-write, which keeps PINs unique.
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().expect("directory poisoned")
    }

    /// Subscribers, subscriptions and the notifications delivered.
    pub fn notifications(&self) -> MutexGuard<'_, NotificationBook> {
        self.notifications.lock().expect("notifications poisoned")
    }

    /// Wall-clock "now" in the zone that decides guest status.
    pub fn local_now(&self) -> NaiveDateTime {
        Utc::now()
            .with_timezone(&self.catalog.primary_time_zone())
            .naive_local()
    }

    pub fn guests(&self) -> Vec<GuestSnapshot> {
        self.directory().guest_snapshots(self.local_now())
    }

    pub fn accesses(&self) -> Vec<AccessSnapshot> {
        self.directory().access_snapshots()
    }

    pub fn live_guests_on_lock(&self, lock_id: Uuid) -> Vec<GuestSnapshot> {
        self.directory()
            .live_guests_on_lock(&self.catalog, lock_id, self.local_now())
    }

    /// Adds an `access_user` someone else set up in the account, past every PIN rule (it is
    /// there to hold PINs lockbridge cannot know about), optionally with access to a lock.
    /// `None` when the lock does not exist.
    pub fn add_access_user(&self, name: &str, pin: &str, lock_id: Option<Uuid>) -> Option<Uuid> {
        if lock_id.is_some_and(|id| self.catalog.lock(id).is_none()) {
            return None;
        }
        let (id, now) = (Uuid::new_v4(), Utc::now());
        let mut directory = self.directory();
        directory.add_person(AccessPerson {
            id,
            kind: PersonKind::User { department: None },
            name: name.to_owned(),
            email: None,
            phone: None,
            pin: Some(pin.to_owned()),
            card_number: None,
            deactivated: false,
            deleted_at: None,
            created_at: now,
            updated_at: now,
        });
        if let Some(lock_id) = lock_id {
            directory.add_access(Access {
                id: Uuid::new_v4(),
                person_id: id,
                accessible: Accessible {
                    kind: AccessibleType::Lock,
                    id: lock_id,
                },
                guest_start_time: None,
                guest_end_time: None,
                created_at: now,
                updated_at: now,
            });
        }
        Some(id)
    }
}
