//! One bearer token per upstream source; the matching source is attached to the request.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use lockbridge_http::{
    auth::{bearer_token, token_matches},
    problem::Problem,
};
use secrecy::SecretString;

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

    /// Compares against every token, so timing reveals neither which source matched nor how
    /// much of a token was right.
    fn source_of(&self, presented: &str) -> Option<String> {
        let mut found = None;
        for (source, token) in &self.0 {
            if token_matches(token, presented) {
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
    let presented = bearer_token(request.headers()).ok_or_else(|| {
        Problem::unauthorized("send Authorization: Bearer <token> with your source's token")
    })?;
    let source = tokens
        .source_of(presented)
        .ok_or_else(|| Problem::unauthorized("the bearer token matches no configured source"))?;
    request.extensions_mut().insert(Source(source));
    Ok(next.run(request).await)
}
