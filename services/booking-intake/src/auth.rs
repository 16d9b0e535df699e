//! One bearer token per upstream source; the matching source is attached to the request.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::Response,
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use lockbridge_shared::problem::Problem;

/// The upstream system a request came from (the key of its `intake.tokens.<source>`).
#[derive(Debug, Clone)]
pub(crate) struct Source(pub String);

pub(crate) struct SourceTokens(Vec<(String, SecretString)>);

impl SourceTokens {
    pub fn new(tokens: &BTreeMap<String, SecretString>) -> Self {
        Self(
            tokens
                .iter()
                .map(|(source, token)| (source.clone(), token.clone()))
                .collect(),
        )
    }

    /// Compares against every token in constant time, so timing reveals neither which
    /// source matched nor how much of a token was right.
    fn source_of(&self, presented: &str) -> Option<String> {
        let mut found = None;
        for (source, token) in &self.0 {
            if bool::from(token.expose_secret().as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(source.clone());
            }
        }
        found
    }
}

pub(crate) async fn require_source(
    State(tokens): State<Arc<SourceTokens>>,
    mut request: Request,
    next: Next,
) -> Result<Response, Problem> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Problem::unauthorized("send Authorization: Bearer <token> with your source's token")
        })?;
    let source = tokens
        .source_of(presented.trim())
        .ok_or_else(|| Problem::unauthorized("the bearer token matches no configured source"))?;
    request.extensions_mut().insert(Source(source));
    Ok(next.run(request).await)
}
