//! The W3C `traceparent` header of a request, for the events it causes to carry on.

use std::convert::Infallible;

use axum::{extract::FromRequestParts, http::request::Parts};
use lockbridge_domain::TraceParent;

/// The request's trace context. Absent or malformed is `None`: the specification asks a
/// receiver to ignore a header it cannot read rather than refuse the request.
pub struct TraceContext(pub Option<TraceParent>);

impl<S: Sync> FromRequestParts<S> for TraceContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all("traceparent").iter();
        // Several traceparent headers cannot be told apart: none is trusted.
        let parent = match (values.next(), values.next()) {
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(|text| TraceParent::parse(text).ok()),
            _ => None,
        };
        Ok(Self(parent))
    }
}
