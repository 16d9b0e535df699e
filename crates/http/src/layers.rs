//! What every JSON API of lockbridge is served with.

use axum::{Router, extract::DefaultBodyLimit, http::Request};
use tower_http::trace::TraceLayer;

/// The layers of a service's JSON API: a body limit, and a span per request that names the
/// path only (a query can hold a secret, such as an OAuth authorization code).
pub fn api_layers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    max_body_bytes: usize,
) -> Router<S> {
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(crate::input::BodyLimit(max_body_bytes)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let (method, path) = (request.method(), request.uri().path());
                tracing::info_span!("request", %method, path)
            }),
        )
}
