//! Reading JSON request bodies field by field, so every error names the field at fault and all
//! of a body's errors are reported at once (RFC 9457 problems, see [`crate::problem`]).

use std::fmt::Display;

use crate::problem::{FieldError, Problem};
use axum::{
    body::Bytes,
    extract::{FromRequest, Request, rejection::BytesRejection},
    http::{StatusCode, header::CONTENT_TYPE},
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A request body that must be a JSON object.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(is_json_media_type);
        if !is_json {
            return Err(Problem::unsupported_media_type());
        }
        let limit = request.extensions().get::<BodyLimit>().copied();
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(error)
                        if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                    {
                        Problem::too_large(limit)
                    }
                    other => Problem::malformed(other.body_text()),
                })?;
        json_object(&bytes).map(Self)
    }
}

/// Whether a content type (`application/json; charset=utf-8`, `application/problem+json`)
/// names JSON.
pub fn is_json_media_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
}

/// A body that must be a JSON object, or the problem naming `body`.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(Problem::malformed("the body must be a JSON object")),
        Err(error) => Err(Problem::malformed(format!(
            "the body is not valid JSON: {error}"
        ))),
    }
}

/// The body limit a router enforces, put on each request by [`crate::api_layers`]:
/// axum's rejection does not say what the limit was.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Collects field errors while reading an object; `finish` turns them into one 422.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: String,
    errors: Vec<FieldError>,
}

/// The longest human-readable name (of a location, space, patron …) lockbridge accepts.
pub const MAX_NAME_LEN: usize = 200;

impl<'a> Fields<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            prefix: String::new(),
            errors: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn error(&mut self, name: &str, detail: impl Into<String>) {
        let field = self.path(name);
        self.errors.push(FieldError {
            field,
            detail: detail.into(),
        });
    }

    fn value(&mut self, name: &str) -> Option<&'a Value> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.error(name, "is required");
                None
            }
            Some(value) => Some(value),
        }
    }

    /// A required string, trimmed, 1 to `max` characters.
    pub fn text(&mut self, name: &str, max: usize) -> Option<String> {
        let value = self.value(name)?;
        let Some(text) = value.as_str().map(str::trim) else {
            self.error(name, "must be a string");
            return None;
        };
        if text.is_empty() {
            self.error(name, "must not be empty");
            None
        } else if text.chars().count() > max {
            self.error(name, format!("must be at most {max} characters"));
            None
        } else {
            Some(text.to_owned())
        }
    }

    /// A required string turned into `T` by `parse`, whose error becomes the field's message.
    pub fn parsed<T, E: Display>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(name, 1024)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(error) => {
                self.error(name, error.to_string());
                None
            }
        }
    }

    /// An RFC 3339 timestamp that states its offset; stored as UTC.
    pub fn instant(&mut self, name: &str) -> Option<DateTime<Utc>> {
        self.parsed(name, |text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| "must be an RFC 3339 time with an offset, such as 2026-12-01T14:00:00-05:00")
        })
    }

    /// An optional non-negative integer.
    pub fn optional_revision(&mut self, name: &str) -> Option<i64> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_i64() {
                Some(n) if n >= 0 => Some(n),
                _ => {
                    self.error(name, "must be a non-negative integer");
                    None
                }
            },
        }
    }

    /// Reads a nested object with its own field paths (`patron.email`).
    pub fn object<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(&mut Fields<'a>) -> Option<T>,
    ) -> Option<T> {
        let value = self.value(name)?;
        let Some(object) = value.as_object() else {
            self.error(name, "must be an object");
            return None;
        };
        let mut nested = Fields {
            object,
            prefix: format!("{}.", self.path(name)),
            errors: Vec::new(),
        };
        let result = read(&mut nested);
        self.errors.append(&mut nested.errors);
        result
    }

    pub fn finish(self) -> Result<(), Problem> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid(self.errors))
        }
    }
}

/// Parses a path segment as an id, or answers 422 naming the path parameter.
pub fn path_id<T>(
    field: &str,
    raw: String,
    parse: impl FnOnce(String) -> Result<T, lockbridge_domain::IdError>,
) -> Result<T, Problem> {
    parse(raw).map_err(|error| Problem::invalid_field(field, error.to_string()))
}
