//! The JSON envelope (remotelock-api.md §2.1): `{"data": {type, id, attributes, links}}` out,
//! `{"type", "attributes"}` in, plus the request-side extractors that go with it.

use std::fmt::Display;

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::errors::{ApiError, ApiResult};
use crate::json_writes::JsonObject;
use crate::state::AppState;

/// `created_at`/`updated_at` and friends: UTC, `Z`, no fractional seconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Resource ids are UUID strings; anything else cannot name a record, hence 404.
pub fn resource_id(raw: &str) -> ApiResult<Uuid> {
    raw.parse().map_err(|_| ApiError::not_found())
}

#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// Always a JSON object.
    pub attributes: Value,
    pub links: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    /// Times finer than the shown seconds, for sorting (the real API keeps them).
    #[serde(skip)]
    pub precise_times: Vec<(&'static str, DateTime<Utc>)>,
}

impl Resource {
    pub fn new(
        kind: impl Into<String>,
        id: impl Display,
        attributes: Value,
        self_link: String,
    ) -> Self {
        debug_assert!(attributes.is_object(), "attributes must be a JSON object");
        Self {
            kind: kind.into(),
            id: id.to_string(),
            attributes,
            links: Map::from_iter([("self".to_owned(), Value::String(self_link))]),
            meta: None,
            precise_times: Vec::new(),
        }
    }

    /// Adds a relationship link (`links.<name>`).
    pub fn link(mut self, name: &str, url: String) -> Self {
        self.links.insert(name.to_owned(), Value::String(url));
        self
    }

    pub fn with_meta(mut self, meta: Value) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Sorts on `attribute` by `at` rather than by the shown second.
    pub fn sorted_by_time(mut self, attribute: &'static str, at: DateTime<Utc>) -> Self {
        self.precise_times.push((attribute, at));
        self
    }

    pub fn precise_time(&self, attribute: &str) -> Option<DateTime<Utc>> {
        self.precise_times
            .iter()
            .find(|(name, _)| *name == attribute)
            .map(|(_, at)| *at)
    }

    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name)
    }
}

#[derive(Debug, Serialize)]
pub struct Single {
    pub data: Resource,
}

#[derive(Debug, Serialize)]
pub struct Collection {
    pub data: Vec<Resource>,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize)]
pub struct PageMeta {
    pub page: usize,
    pub per_page: usize,
    pub total_count: usize,
    pub total_pages: usize,
}

/// Base for `links`: the scheme and host the client used (so links work behind compose
/// service names), falling back to the address the simulator bound.
#[derive(Debug, Clone)]
pub struct ApiBase(String);

impl ApiBase {
    /// Links for what the simulator sends by itself (webhooks): its own address.
    pub fn of_simulator(base_url: &url::Url) -> Self {
        Self(base_url.as_str().trim_end_matches('/').to_owned())
    }

    /// `path` starts with `/`, e.g. `/devices/<id>`.
    pub fn url(&self, path: impl Display) -> String {
        format!("{}{path}", self.0)
    }
}

impl FromRequestParts<AppState> for ApiBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
        Ok(Self(match host {
            Some(host) => format!("http://{host}"),
            None => return Ok(Self::of_simulator(&state.base_url)),
        }))
    }
}

/// A write request's body: `{"type": ..., "attributes": {...}}`. Media type and JSON syntax
/// were checked by [`crate::json_writes`]; a missing `attributes` object is 400.
#[derive(Debug)]
pub struct RequestBody {
    pub kind: Option<String>,
    pub attributes: Map<String, Value>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestBody {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let JsonObject(root) = parts
            .extensions
            .remove()
            .ok_or_else(|| ApiError::bad_request("The request body must be a JSON object"))?;
        Self::from_root(root)
    }
}

impl RequestBody {
    /// The `type` a polymorphic create needs: 422 when missing or not one `parse` knows.
    pub fn required_type<T>(&self, parse: impl Fn(&str) -> Option<T>) -> ApiResult<T> {
        let attributes = &self.attributes;
        match self.kind.as_deref() {
            Some(kind) => parse(kind).ok_or_else(|| {
                ApiError::invalid(attributes, Some("type"), "is not included in the list")
            }),
            None => Err(ApiError::invalid(
                attributes,
                Some("type"),
                "can't be blank",
            )),
        }
    }

    fn from_root(mut root: Map<String, Value>) -> ApiResult<Self> {
        let kind = match root.remove("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(kind),
            Some(_) => return Err(ApiError::bad_request("type must be a string")),
        };
        match root.remove("attributes") {
            Some(Value::Object(attributes)) => Ok(Self { kind, attributes }),
            None | Some(Value::Null) => Err(ApiError::bad_request(
                "param is missing or the value is empty: attributes",
            )),
            Some(_) => Err(ApiError::bad_request("attributes must be an object")),
        }
    }
}
