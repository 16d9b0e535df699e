//! The RemoteLock client: OAuth, the stored authorization (its tokens encrypted at rest), the
//! account's rate-limit budget shared by every process that calls RemoteLock, and the API
//! calls lockbridge makes, with errors classified for durable retries.

mod budget;
mod client;
mod error;
pub mod events;
mod oauth;
mod resources;
mod settings;
mod tokens;
pub mod webhooks;

pub use budget::Urgency;
pub use client::{RemoteLockClient, Work};
pub use error::{FieldError, NotAuthorized, RemoteLockError, TransientCause};
pub use oauth::{OAuthClient, TokenSet};
pub use resources::{
    Access, AccessGuest, Account, Device, DeviceType, Event, GuestStatus, GuestUpdate, Location,
    NewAccessGuest, RemoteLockLocationId,
};
pub use settings::{RemoteLockSettings, TOKEN_KEY};
pub use tokens::TokenManager;
