//! Collection queries (remotelock-api.md §2.2, §2.3): `id[]`, `type`/`type[]`,
//! `attributes[<name>]` (also array form) filters, `sort`/`sort[]` with `-` for descending,
//! and `page`/`per_page` pagination. They work on rendered resources, so every endpoint
//! filters and sorts on exactly the attributes it shows.

use std::cmp::Ordering;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;
use url::form_urlencoded;

use crate::envelope::{Collection, PageMeta, Resource};
use crate::errors::{ApiError, ApiResult};

const DEFAULT_PER_PAGE: usize = 25;
const MAX_PER_PAGE: usize = 50;
/// `page * per_page` may not exceed this (documented); beyond it we answer 400 (our choice).
const MAX_WINDOW: usize = 10_000;

/// What one collection endpoint allows.
pub struct ListSpec {
    pub sortable: &'static [&'static str],
    /// Used when the request has no `sort`, e.g. `"created_at"` or `"-occurred_at"`.
    pub default_sort: &'static str,
}

#[derive(Debug)]
pub struct ListQuery {
    page: usize,
    per_page: usize,
    ids: Option<Vec<String>>,
    types: Option<Vec<String>>,
    attributes: Vec<(String, Vec<String>)>,
    sort: Vec<SortKey>,
}

#[derive(Debug, Clone)]
struct SortKey {
    attribute: String,
    descending: bool,
}

impl SortKey {
    fn parse(raw: &str) -> Self {
        match raw.strip_prefix('-') {
            Some(attribute) => Self {
                attribute: attribute.to_owned(),
                descending: true,
            },
            None => Self {
                attribute: raw.to_owned(),
                descending: false,
            },
        }
    }

    /// `created_at` is shown to the second, but the real API stores finer times: records
    /// created within one second still sort by creation, in the key's direction, so that
    /// `sort=-created_at` really lists the newest first. Positions are creation order.
    /// Resources that carry their precise times ([`Resource::sorted_by_time`], events) sort
    /// by those first.
    fn created_at_tie(&self, a_position: usize, b_position: usize) -> Ordering {
        match self.attribute.as_str() {
            "created_at" | "occurred_at" if self.descending => b_position.cmp(&a_position),
            "created_at" | "occurred_at" => a_position.cmp(&b_position),
            _ => Ordering::Equal,
        }
    }

    fn compare(&self, a: &Resource, b: &Resource) -> Ordering {
        let ordering = match (
            a.precise_time(&self.attribute),
            b.precise_time(&self.attribute),
        ) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => compare_values(a.attribute(&self.attribute), b.attribute(&self.attribute)),
        };
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::parse(parts.uri.query().unwrap_or_default())
    }
}

impl ListQuery {
    pub fn parse(query: &str) -> ApiResult<Self> {
        let mut page = 1;
        let mut per_page = DEFAULT_PER_PAGE;
        let mut ids: Option<Vec<String>> = None;
        let mut types: Option<Vec<String>> = None;
        let mut attributes: Vec<(String, Vec<String>)> = Vec::new();
        let mut sort = Vec::new();

        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "page" => page = positive(&key, &value)?,
                "per_page" => per_page = positive(&key, &value)?.min(MAX_PER_PAGE),
                "id" | "id[]" => ids.get_or_insert_default().push(value.into_owned()),
                "type" | "type[]" => types.get_or_insert_default().push(value.into_owned()),
                "sort" | "sort[]" => sort.push(SortKey::parse(&value)),
                other => {
                    if let Some(name) = attribute_filter_name(other) {
                        match attributes.iter_mut().find(|(n, _)| n == name) {
                            Some((_, values)) => values.push(value.into_owned()),
                            None => attributes.push((name.to_owned(), vec![value.into_owned()])),
                        }
                    }
                }
            }
        }
        if page.saturating_mul(per_page) > MAX_WINDOW {
            return Err(ApiError::bad_request(format!(
                "page * per_page must not exceed {MAX_WINDOW}"
            )));
        }
        Ok(Self {
            page,
            per_page,
            ids,
            types,
            attributes,
            sort,
        })
    }

    /// Applies `attributes[name]=values` unless the client filtered on `name` itself.
    pub fn default_filter(&mut self, name: &str, values: &[&str]) {
        if !self.attributes.iter().any(|(n, _)| n == name) {
            let values = values.iter().map(|v| (*v).to_owned()).collect();
            self.attributes.push((name.to_owned(), values));
        }
    }

    /// Filters, sorts and cuts out the requested page; `resources` come in creation order.
    pub fn apply(&self, spec: &ListSpec, mut resources: Vec<Resource>) -> ApiResult<Collection> {
        resources.retain(|r| self.matches(r));

        let sort = if self.sort.is_empty() {
            vec![SortKey::parse(spec.default_sort)]
        } else {
            self.sort.clone()
        };
        if let Some(bad) = sort
            .iter()
            .find(|k| !spec.sortable.contains(&k.attribute.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "Cannot sort by {}; sortable: {}",
                bad.attribute,
                spec.sortable.join(", ")
            )));
        }
        // Stable sort: other ties keep creation order.
        let mut indexed: Vec<(usize, Resource)> = resources.into_iter().enumerate().collect();
        indexed.sort_by(|(i, a), (j, b)| {
            sort.iter()
                .map(|key| key.compare(a, b).then_with(|| key.created_at_tie(*i, *j)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });

        let total_count = indexed.len();
        let data = indexed
            .into_iter()
            .map(|(_, resource)| resource)
            .skip((self.page - 1) * self.per_page)
            .take(self.per_page)
            .collect();
        Ok(self.page_of(data, total_count))
    }

    /// The requested page of a collection with no records at all (an empty account), whatever
    /// the filters and sort.
    pub fn nothing(&self) -> Collection {
        self.page_of(Vec::new(), 0)
    }

    fn page_of(&self, data: Vec<Resource>, total_count: usize) -> Collection {
        Collection {
            data,
            meta: PageMeta {
                page: self.page,
                per_page: self.per_page,
                total_count,
                total_pages: total_count.div_ceil(self.per_page),
            },
        }
    }

    fn matches(&self, resource: &Resource) -> bool {
        let in_list = |list: &Option<Vec<String>>, value: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        };
        in_list(&self.ids, &resource.id)
            && in_list(&self.types, &resource.kind)
            && self.attributes.iter().all(|(name, values)| {
                resource
                    .attribute(name)
                    .is_some_and(|actual| values.iter().any(|v| *v == filter_text(actual)))
            })
    }
}

fn positive(key: &str, value: &str) -> ApiResult<usize> {
    value
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::bad_request(format!("{key} must be a positive integer")))
}

/// `attributes[status]` and `attributes[status][]` → `status`.
fn attribute_filter_name(key: &str) -> Option<&str> {
    let inner = key.strip_prefix("attributes[")?;
    inner.strip_suffix("[]").unwrap_or(inner).strip_suffix(']')
}

/// How an attribute value compares to a query-string value.
fn filter_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Nulls (and missing attributes) sort after everything else.
fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null())) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(id: &str, name: &str, level: u8) -> Resource {
        Resource::new(
            "lock",
            id,
            json!({"name": name, "power_level": level, "location_id": "a"}),
            String::new(),
        )
    }

    fn ids(collection: &Collection) -> Vec<&str> {
        collection.data.iter().map(|r| r.id.as_str()).collect()
    }

    const SPEC: ListSpec = ListSpec {
        sortable: &["name", "power_level"],
        default_sort: "name",
    };

    #[test]
    fn parses_filters_sort_and_clamps_per_page() {
        let query = ListQuery::parse(
            "id[]=1&id[]=3&attributes[location_id]=a&sort=-power_level&per_page=500",
        )
        .unwrap();
        assert_eq!(query.per_page, MAX_PER_PAGE);
        let all = vec![
            resource("1", "b", 10),
            resource("2", "a", 20),
            resource("3", "c", 30),
        ];
        assert_eq!(ids(&query.apply(&SPEC, all).unwrap()), ["3", "1"]);
    }

    #[test]
    fn created_at_ties_follow_creation_in_the_sort_direction() {
        let same_second = |id: &str| {
            Resource::new(
                "access_guest",
                id,
                json!({"created_at": "2030-01-01T00:00:00Z"}),
                String::new(),
            )
        };
        let all = || vec![same_second("1"), same_second("2"), same_second("3")];
        let spec = ListSpec {
            sortable: &["created_at"],
            default_sort: "created_at",
        };
        let newest = ListQuery::parse("sort=-created_at").unwrap();
        assert_eq!(ids(&newest.apply(&spec, all()).unwrap()), ["3", "2", "1"]);
        let oldest = ListQuery::parse("").unwrap();
        assert_eq!(ids(&oldest.apply(&spec, all()).unwrap()), ["1", "2", "3"]);
    }

    #[test]
    fn pages_past_the_end_are_empty_and_the_window_is_bounded() {
        let query = ListQuery::parse("page=3&per_page=2").unwrap();
        let all = vec![
            resource("1", "a", 1),
            resource("2", "b", 2),
            resource("3", "c", 3),
        ];
        let page = query.apply(&SPEC, all).unwrap();
        assert!(page.data.is_empty());
        assert_eq!((page.meta.total_count, page.meta.total_pages), (3, 2));

        assert!(ListQuery::parse("page=201&per_page=50").is_err());
        assert!(ListQuery::parse("page=0").is_err());
    }

    #[test]
    fn array_attribute_filters_and_unsortable_attributes() {
        let query = ListQuery::parse("attributes[name][]=a&attributes[name][]=c").unwrap();
        let all = vec![
            resource("1", "a", 1),
            resource("2", "b", 2),
            resource("3", "c", 3),
        ];
        assert_eq!(ids(&query.apply(&SPEC, all.clone()).unwrap()), ["1", "3"]);
        assert!(
            ListQuery::parse("sort=serial")
                .unwrap()
                .apply(&SPEC, all)
                .is_err()
        );
    }
}
