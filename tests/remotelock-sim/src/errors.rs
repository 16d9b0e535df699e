//! The two error bodies of the API (remotelock-api.md §2.5): the *general error*
//! `{"message", "type"}` and the *resource error* `{"attributes", "errors": [...]}` (422).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug)]
pub enum ApiError {
    General {
        status: StatusCode,
        message: String,
        kind: &'static str,
    },
    Invalid {
        /// The submitted attributes, echoed back as the real API does.
        attributes: Map<String, Value>,
        errors: Vec<FieldError>,
    },
}

impl ApiError {
    pub fn general(status: StatusCode, message: impl Into<String>, kind: &'static str) -> Self {
        Self::General {
            status,
            message: message.into(),
            kind,
        }
    }

    pub fn not_found() -> Self {
        Self::general(StatusCode::NOT_FOUND, "Resource not found", "not_found")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::general(StatusCode::BAD_REQUEST, message, "bad_request")
    }

    /// A single validation error outside the usual attribute checks.
    pub fn invalid(
        attributes: &Map<String, Value>,
        attribute: Option<&str>,
        message: &str,
    ) -> Self {
        let mut violations = Violations::default();
        violations.add(attribute, message);
        Self::Invalid {
            attributes: attributes.clone(),
            errors: violations.0,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::General {
                status,
                message,
                kind,
            } => (status, Json(json!({ "message": message, "type": kind }))).into_response(),
            Self::Invalid { attributes, errors } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "attributes": attributes, "errors": errors })),
            )
                .into_response(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FieldError {
    /// `null` for errors that concern the record as a whole.
    attribute: Option<String>,
    messages: Vec<String>,
    full_messages: Vec<String>,
}

/// Collects validation messages so one 422 reports every problem, grouped per attribute.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn add(&mut self, attribute: Option<&str>, message: &str) {
        let full_message = match attribute {
            Some(name) => format!("{name} {message}"),
            None => message.to_owned(),
        };
        match self
            .0
            .iter_mut()
            .find(|e| e.attribute.as_deref() == attribute)
        {
            Some(existing) => {
                existing.messages.push(message.to_owned());
                existing.full_messages.push(full_message);
            }
            None => self.0.push(FieldError {
                attribute: attribute.map(str::to_owned),
                messages: vec![message.to_owned()],
                full_messages: vec![full_message],
            }),
        }
    }

    pub fn on(&mut self, attribute: &str, message: &str) {
        self.add(Some(attribute), message);
    }

    /// A string attribute, trimmed. Absent, null or blank is `None` ("can't be blank" when
    /// `required`); another JSON type is "is invalid".
    pub fn text(
        &mut self,
        attributes: &Map<String, Value>,
        name: &str,
        required: bool,
    ) -> Option<String> {
        match attributes.get(name) {
            Some(Value::String(value)) if !value.trim().is_empty() => Some(value.trim().to_owned()),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                if required {
                    self.on(name, "can't be blank");
                }
                None
            }
            Some(_) => {
                self.on(name, "is invalid");
                None
            }
        }
    }

    /// A required string attribute that must be one of `allowed` ("is not included in the
    /// list").
    pub fn one_of(
        &mut self,
        attributes: &Map<String, Value>,
        name: &str,
        allowed: &[&'static str],
    ) -> Option<&'static str> {
        let value = self.text(attributes, name, true)?;
        let found = allowed.iter().copied().find(|a| *a == value);
        if found.is_none() {
            self.on(name, "is not included in the list");
        }
        found
    }

    pub fn concerns(&self, attribute: &str) -> bool {
        self.0
            .iter()
            .any(|e| e.attribute.as_deref() == Some(attribute))
    }

    /// `Ok` when nothing was reported, else the 422 echoing `attributes`.
    pub fn into_result(self, attributes: &Map<String, Value>) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid {
                attributes: attributes.clone(),
                errors: self.0,
            })
        }
    }
}
