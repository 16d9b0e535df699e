//! Parsing of path id lists and query values, with the 400s for bad ones.

use std::collections::HashMap;
use std::str::FromStr;

use crate::errors::{BadRequest, bad_request};

/// `12,34` → `[12, 34]`: every v1.1 path id may be a comma list (doc §3).
pub fn id_list<T: FromStr>(raw: &str, what: &str) -> Result<Vec<T>, BadRequest> {
    raw.split(',')
        .map(|part| {
            part.trim()
                .parse()
                .map_err(|_| bad_request(format!("{what} {part:?} is not an id")))
        })
        .collect()
}

pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, BadRequest> {
        self.0
            .get(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| bad_request(format!("{name} {v:?} is not a number")))
            })
            .transpose()
    }

    /// `0`/`1` flags; anything else is refused rather than guessed.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, BadRequest> {
        match self.0.get(name).map(|v| v.trim()) {
            None => Ok(default),
            Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(other) => Err(bad_request(format!("{name} {other:?} is not 0 or 1"))),
        }
    }

    pub fn ids<T: FromStr>(&self, name: &str) -> Result<Option<Vec<T>>, BadRequest> {
        self.0.get(name).map(|v| id_list(v, name)).transpose()
    }
}
