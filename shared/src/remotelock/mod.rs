//! The RemoteLock client: OAuth, the stored authorization, the account's rate-limit budget,
//! and the API calls lockbridge makes, with errors classified for durable retries.

mod budget;
mod client;
mod error;
mod oauth;
mod resources;
mod tokens;

pub use budget::Urgency;
pub use client::{RemoteLockClient, Work};
pub use error::{FieldError, NotAuthorized, RemoteLockError, TransientCause};
pub use oauth::{OAuthClient, TokenSet};
pub use resources::{
    Access, AccessGuest, Account, Device, DeviceType, Event, GuestStatus, GuestUpdate, Location,
    NewAccessGuest, RemoteLockLocationId,
};
pub use tokens::TokenManager;
