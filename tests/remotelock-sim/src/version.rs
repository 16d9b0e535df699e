//! API version negotiation (remotelock-api.md §1.3): a `/v1` path prefix (routing) or an
//! `Accept` header. Refusing an explicit other version with 406 is our inference; the docs only
//! say that a missing version means the latest (1).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::ACCEPT;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::ApiError;

const VENDORS: [&str; 2] = ["lockstate", "remotelock"];

pub async fn negotiate(request: Request, next: Next) -> Response {
    let accept = request
        .headers()
        .get(ACCEPT)
        .map(|v| v.to_str().unwrap_or_default());
    if accept.is_none_or(accepts_v1) {
        next.run(request).await
    } else {
        ApiError::general(
            StatusCode::NOT_ACCEPTABLE,
            "Only version 1 of the API is available; send Accept: application/vnd.lockstate+json; version=1",
            "not_acceptable",
        )
        .into_response()
    }
}

/// Whether any media range of an `Accept` header can be served by version 1.
fn accepts_v1(accept: &str) -> bool {
    accept.trim().is_empty() || accept.split(',').any(range_accepts_v1)
}

fn range_accepts_v1(range: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default().to_ascii_lowercase();
    let version = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("version")
            .then(|| value.trim().trim_matches('"').to_owned())
    });
    match media.as_str() {
        "*/*" | "application/*" | "application/json" => true,
        _ => {
            let Some(subtype) = media.strip_prefix("application/vnd.") else {
                return false;
            };
            VENDORS.iter().any(|vendor| {
                let Some(rest) = subtype.strip_prefix(vendor) else {
                    return false;
                };
                match rest {
                    // application/vnd.lockstate+json; version=1 (or no version = latest)
                    "+json" => version.as_deref().is_none_or(|v| v == "1"),
                    // application/vnd.lockstate.v1+json
                    _ => rest == ".v1+json",
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_v1;

    #[test]
    fn documented_forms_are_accepted() {
        for accept in [
            "application/vnd.lockstate+json; version=1",
            "application/vnd.lockstate.v1+json",
            "application/vnd.remotelock.v1+json",
            "application/vnd.remotelock+json; version=1",
            "application/vnd.remotelock+json",
            "application/json",
            "*/*",
            "text/html, */*;q=0.8",
            "",
        ] {
            assert!(accepts_v1(accept), "{accept}");
        }
    }

    #[test]
    fn other_versions_and_types_are_refused() {
        for accept in [
            "application/vnd.lockstate+json; version=2",
            "application/vnd.remotelock.v2+json",
            "text/html",
            "application/vnd.other.v1+json",
        ] {
            assert!(!accepts_v1(accept), "{accept}");
        }
    }
}
