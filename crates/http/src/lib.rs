//! The conventions of lockbridge's HTTP APIs: RFC 9457 problems, JSON input read field by
//! field with every error reported at once, bearer tokens compared in constant time, the
//! layers every API is served with, the request's trace context, and HTML escaping (for the few pages served, and the
//! emails the notifier writes with the same care).

pub mod auth;
pub mod html;
pub mod input;
mod layers;
pub mod problem;
pub mod trace;

pub use layers::api_layers;
