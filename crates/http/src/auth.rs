//! Bearer tokens on the services' HTTP APIs: reading one from a request and checking it.

use axum::http::{HeaderMap, header::AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The credentials of `Authorization: Bearer <token>` (the scheme in any case, RFC 7235),
/// trimmed; `None` when the request has no such header or it carries nothing.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim())
        // An empty credential is no credential, whatever token is configured.
        .filter(|credentials| !credentials.is_empty())
}

/// Compares in constant time: timing reveals at most the token's length, never how much of
/// it was right.
pub fn token_matches(token: &SecretString, presented: &str) -> bool {
    token
        .expose_secret()
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    #[test]
    fn the_bearer_credentials_are_read_trimmed() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
    }

    #[test]
    fn other_schemes_and_no_header_give_none() {
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        assert_eq!(bearer_token(&headers("Basic YWJj")), None);
        assert_eq!(bearer_token(&headers("Bearerabc")), None);
        assert_eq!(bearer_token(&headers("Bearer  ")), None);
    }

    #[test]
    fn only_the_same_token_matches() {
        let token = SecretString::from("s3cret");
        assert!(token_matches(&token, "s3cret"));
        assert!(!token_matches(&token, "s3cre"));
        assert!(!token_matches(&token, "s3cret!"));
        assert!(!token_matches(&token, ""));
    }
}
