//! The RemoteLock client: OAuth, the stored authorization, pacing under the rate limit, and
//! the API calls lockbridge makes, with errors classified for durable retries.

mod client;
mod error;
mod oauth;
mod rate_limit;
mod resources;
mod tokens;

pub use client::RemoteLockClient;
pub use error::{FieldError, NotAuthorized, RemoteLockError, TransientCause};
pub use oauth::{OAuthClient, TokenSet};
pub use resources::{
    Access, AccessGuest, Account, Device, DeviceType, Event, GuestStatus, GuestUpdate, Location,
    NewAccessGuest, RemoteLockLocationId,
};
pub use tokens::TokenManager;
