//! Locations, categories, spaces ("items") and seats (doc §3.1–3.5, §3.8 seats).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query as RawQuery, State};
use serde_json::{Value, json};

use crate::errors::{BadRequest, bad_request};
use crate::model::Space;
use crate::params::{Query, id_list};
use crate::router::AppState;
use crate::state::Data;

type Params = RawQuery<HashMap<String, String>>;

pub async fn locations(State(state): State<AppState>) -> Json<Value> {
    let data = state.data();
    // No `formid`: the simulator has no booking forms, and the doc says it is then omitted.
    let list: Vec<_> = data
        .locations
        .iter()
        .map(|l| json!({ "lid": l.lid, "name": l.name, "public": 1 }))
        .collect();
    Json(Value::Array(list))
}

pub async fn categories(
    State(state): State<AppState>,
    Path(lids): Path<String>,
) -> Result<Json<Value>, BadRequest> {
    let lids = id_list::<u32>(&lids, "location")?;
    let data = state.data();
    let list = lids.iter().map(|&lid| match data.location(lid) {
        // Per-id errors live inside the 200 array (doc §3.2, §6).
        None => json!({ "lid": lid, "error": "invalid location id" }),
        Some(location) => {
            let categories: Vec<_> = data
                .categories
                .iter()
                .filter(|c| c.lid == lid)
                .map(|c| json!({ "cid": c.cid, "name": c.name, "formid": 0, "public": 1 }))
                .collect();
            json!({ "lid": lid, "name": location.name, "categories": categories })
        }
    });
    Ok(Json(list.collect()))
}

pub async fn category(
    State(state): State<AppState>,
    Path(cids): Path<String>,
    RawQuery(query): Params,
) -> Result<Json<Value>, BadRequest> {
    let cids = id_list::<u32>(&cids, "category")?;
    let details = Query(query).flag("details", false)?;
    let data = state.data();
    let list = cids.iter().map(|&cid| match data.category(cid) {
        None => json!({ "cid": cid, "error": "invalid category id" }),
        Some(category) => {
            let spaces = data.spaces.iter().filter(|s| s.cid == cid);
            // Without details the items are bare ids (doc §3.3).
            let items: Vec<_> = if details {
                spaces.map(|s| item(&data, s)).collect()
            } else {
                spaces.map(|s| json!(s.id)).collect()
            };
            json!({
                "cid": cid, "name": category.name, "formid": 0, "public": 1, "items": items,
            })
        }
    });
    Ok(Json(list.collect()))
}

pub async fn item_by_id(
    State(state): State<AppState>,
    Path(ids): Path<String>,
) -> Result<Json<Value>, BadRequest> {
    let ids = id_list::<u32>(&ids, "item")?;
    let data = state.data();
    let list = ids.iter().map(|&id| match data.space(id) {
        None => json!({ "id": id, "error": "invalid item id" }),
        Some(space) => item(&data, space),
    });
    Ok(Json(list.collect()))
}

/// `/api/1.1/space/items/{lid}`: `categoryId` filter.
pub async fn items_of_location(
    State(state): State<AppState>,
    Path(lid): Path<String>,
    RawQuery(query): Params,
) -> Result<Json<Value>, BadRequest> {
    let query = Query(query);
    let category = query.number::<u32>("categoryId")?;
    let data = state.data();
    let page = LocationPage::parse(&data, &lid, &query)?;
    let spaces = data
        .spaces
        .iter()
        .filter(|s| page.holds(&data, s.id))
        .filter(|s| category.is_none_or(|cid| s.cid == cid));
    Ok(Json(page.slice(spaces).map(|s| item(&data, s)).collect()))
}

/// `/api/1.1/space/seats/{lid}`: seats of the location's per-seat spaces, `spaceId` filter.
pub async fn seats_of_location(
    State(state): State<AppState>,
    Path(lid): Path<String>,
    RawQuery(query): Params,
) -> Result<Json<Value>, BadRequest> {
    let query = Query(query);
    let space = query.number::<u32>("spaceId")?;
    let data = state.data();
    let page = LocationPage::parse(&data, &lid, &query)?;
    let seats = data
        .seats
        .iter()
        .filter(|seat| page.holds(&data, seat.space_id))
        .filter(|seat| space.is_none_or(|id| seat.space_id == id));
    let list = page.slice(seats).map(|seat| {
        json!({
            "id": seat.id, "name": seat.name, "description": "", "isAccessible": false,
            "isPowered": true, "spaceId": seat.space_id,
        })
    });
    Ok(Json(list.collect()))
}

/// What the `/api/1.1` location lists share: a known location and a page (`pageIndex`
/// 0-based, `pageSize` 1–100, doc §3.5).
struct LocationPage {
    lid: u32,
    skip: usize,
    take: usize,
}

impl LocationPage {
    fn parse(data: &Data, raw_lid: &str, query: &Query) -> Result<Self, BadRequest> {
        let lid: u32 = raw_lid
            .trim()
            .parse()
            .map_err(|_| bad_request(format!("location {raw_lid:?} is not an id")))?;
        let index = query.number::<usize>("pageIndex")?.unwrap_or(0);
        let size = query.number::<usize>("pageSize")?.unwrap_or(100);
        if !(1..=100).contains(&size) {
            return Err(bad_request("pageSize must be between 1 and 100"));
        }
        if data.location(lid).is_none() {
            return Err(bad_request(format!("invalid location id {lid}")));
        }
        let skip = index.saturating_mul(size);
        Ok(Self {
            lid,
            skip,
            take: size,
        })
    }

    /// Whether space `space_id` belongs to this location.
    fn holds(&self, data: &Data, space_id: u32) -> bool {
        data.space(space_id)
            .and_then(|s| data.category(s.cid))
            .is_some_and(|c| c.lid == self.lid)
    }

    fn slice<T>(&self, items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
        items.skip(self.skip).take(self.take)
    }
}

/// The item object of doc §3.4. No zone, image or sync keys: the simulator models none.
fn item(data: &Data, space: &Space) -> Value {
    let category = data.category(space.cid).map_or("", |c| c.name.as_str());
    json!({
        "id": space.id,
        "name": space.name,
        "description": "",
        "capacity": space.capacity,
        "formid": 0,
        "isBookableAsWhole": space.bookable_as_whole,
        "isAccessible": false,
        "isPowered": true,
        "isEventLocation": false,
        "groupId": space.cid,
        "groupName": category,
    })
}
