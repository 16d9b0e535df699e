//! Staff accounts of the HTML UI: who they are and what their role lets them do, their
//! sessions, and the sign-in rate limit. The tables are in migrations/…_staff_accounts.sql.

pub mod accounts;
pub(crate) mod sessions;
pub(crate) mod sign_in;

pub use accounts::{CreateUserError, Email, Password, Role, create_user};
