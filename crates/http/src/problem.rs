//! RFC 9457 problem documents (`application/problem+json`), naming the field at fault.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// A JSON-pointer-like path into the request, e.g. `patron.email`, or a path parameter.
    pub field: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    #[serde(serialize_with = "status_code")]
    pub status: StatusCode,
    pub detail: String,
    /// The first field at fault, for clients that show one message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

fn status_code<S: serde::Serializer>(
    status: &StatusCode,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u16(status.as_u16())
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title,
            status,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "urn:lockbridge:problem:unauthorized",
            "Unauthorized",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "urn:lockbridge:problem:not-found",
            "Not found",
            detail,
        )
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "urn:lockbridge:problem:malformed",
            "Malformed request",
            detail,
        )
        .with_field("body")
    }

    pub fn too_large(limit: Option<crate::input::BodyLimit>) -> Self {
        let detail = match limit {
            Some(crate::input::BodyLimit(bytes)) => {
                format!("the body may be at most {bytes} bytes")
            }
            None => "the body is larger than this endpoint accepts".to_owned(),
        };
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:lockbridge:problem:too-large",
            "Request body too large",
            detail,
        )
        .with_field("body")
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "urn:lockbridge:problem:media-type",
            "Unsupported media type",
            "send the body as JSON with Content-Type: application/json",
        )
        .with_field("content-type")
    }

    /// One or more fields are invalid: 422 listing them all.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect::<Vec<_>>()
            .join("; ");
        let field = errors.first().map(|e| e.field.clone());
        Self {
            field,
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "urn:lockbridge:problem:invalid",
                "Invalid request",
                detail,
            )
        }
    }

    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError {
            field: field.to_owned(),
            detail: detail.into(),
        }])
    }

    /// The request is valid but conflicts with what is stored.
    pub fn conflict(field: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "urn:lockbridge:problem:conflict",
            "Conflict",
            detail,
        )
        .with_field(field)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:lockbridge:problem:unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// An upstream service (RemoteLock) answered in a way we cannot use.
    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "urn:lockbridge:problem:upstream",
            "Upstream service failed",
            detail,
        )
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        // The cause goes to the log, not to the client.
        tracing::error!(error = %lockbridge_runtime::telemetry::error_chain(&error), "database error");
        Self::unavailable("the database is unavailable; retry later")
    }
}

impl From<lockbridge_sealing::SealError> for Problem {
    fn from(error: lockbridge_sealing::SealError) -> Self {
        // The error names the key setting; staff get told where to look, the log says which.
        tracing::error!(%error, "a stored PIN cannot be decrypted");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "urn:lockbridge:problem:undecryptable",
            "Stored data cannot be decrypted",
            "a stored PIN cannot be decrypted under the configured keys; the service's log \
             names the setting to check",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
