//! `GET /space/bookings` (the polling endpoint, doc §3.6) and `GET /space/booking/{bookIds}`
//! (§3.7), writing rows as in §4.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query as RawQuery, State};
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::config::OverLimit;
use crate::errors::{BadRequest, bad_request};
use crate::model::{BookingRow, Status};
use crate::params::{Query, id_list};
use crate::router::AppState;
use crate::state::Data;

/// Default `limit` (doc: 20).
const DEFAULT_LIMIT: u32 = 20;

pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery<HashMap<String, String>>,
) -> Result<Json<Value>, BadRequest> {
    let query = Query(query);
    let config = &state.config;
    let today = Utc::now().with_timezone(&config.time_zone).date_naive();
    let first_day = match query.0.get("date") {
        // `%m`/`%d` also take unpadded digits, which PITT sends and LibCal accepts.
        Some(raw) => NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| bad_request(format!("date {raw:?} is not YYYY-MM-DD")))?,
        None => today,
    };
    // Then `days` counts from today [I: how an ignored date combines with `days` is unknown].
    let first_day = if config.ignore_past_dates {
        first_day.max(today)
    } else {
        first_day
    };
    let days = query.number::<u32>("days")?.unwrap_or(0);
    if days > config.max_days {
        let max = config.max_days;
        return Err(bad_request(format!("days must be between 0 and {max}")));
    }
    let last_day = first_day
        .checked_add_days(Days::new(days.into()))
        .ok_or_else(|| bad_request("date + days is out of range"))?;
    let mut limit = query.number::<u32>("limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit > config.max_limit && config.over_limit == OverLimit::Clamp {
        limit = config.max_limit;
    }
    if !(1..=config.max_limit).contains(&limit) {
        let max = config.max_limit;
        return Err(bad_request(format!("limit must be between 1 and {max}")));
    }
    let page = query.number::<u32>("page")?.unwrap_or(1);
    if page == 0 {
        return Err(bad_request("page starts at 1"));
    }
    let eids = query.ids::<u32>("eid")?;
    let cids = query.ids::<u32>("cid")?;
    let seat_ids = query.ids::<u32>("seat_id")?;
    let lid = query.number::<u32>("lid")?;
    let email = query.0.get("email");
    let with_cancelled = query.flag("include_cancel", true)?;
    let with_tentative = query.flag("include_tentative", true)?;
    let with_remote = query.flag("include_remote", false)?;

    let data = state.data();
    let mut rows: Vec<_> = data
        .rows
        .iter()
        .filter(|r| visible(r.status, config.show_denied))
        .filter(|r| with_cancelled || !r.status.is_cancelled())
        .filter(|r| with_tentative || !r.status.is_tentative())
        .filter(|r| with_remote || !r.remote)
        .filter(|r| eids.as_ref().is_none_or(|ids| ids.contains(&r.eid)))
        .filter(|r| {
            seat_ids
                .as_ref()
                .is_none_or(|ids| r.seat_id.is_some_and(|s| ids.contains(&s)))
        })
        .filter(|r| email.is_none_or(|e| e.eq_ignore_ascii_case(&r.email)))
        .filter_map(|r| Some((r, Place::of(&data, r)?)))
        .filter(|(_, p)| cids.as_ref().is_none_or(|ids| ids.contains(&p.cid)))
        .filter(|(_, p)| lid.is_none_or(|lid| lid == p.lid))
        .filter(|(r, p)| {
            // A row belongs to the day it starts on, in its location's zone.
            let day = r.from.with_timezone(&p.zone).date_naive();
            (first_day..=last_day).contains(&day)
        })
        .collect();
    rows.sort_by_key(|(r, _)| (r.from, r.id));
    let start = (page as usize - 1) * limit as usize;
    let list = rows
        .into_iter()
        .skip(start)
        .take(limit as usize)
        .map(|(r, p)| render(&data, r, &p));
    Ok(Json(list.collect()))
}

pub async fn by_book_id(
    State(state): State<AppState>,
    Path(ids): Path<String>,
) -> Result<Json<Value>, BadRequest> {
    let ids = id_list::<String>(&ids, "booking")?;
    let data = state.data();
    let list = data
        .rows
        .iter()
        .filter(|r| ids.contains(&r.book_id) && visible(r.status, state.config.show_denied))
        .filter_map(|r| Some(render(&data, r, &Place::of(&data, r)?)));
    Ok(Json(list.collect()))
}

fn visible(status: Status, show_denied: bool) -> bool {
    show_denied || status != Status::MediatedDenied
}

/// Where a row is booked, resolved through the catalogue.
struct Place {
    cid: u32,
    lid: u32,
    zone: Tz,
}

impl Place {
    fn of(data: &Data, row: &BookingRow) -> Option<Self> {
        let cid = data.space(row.eid)?.cid;
        let lid = data.category(cid)?.lid;
        let zone = data.location(lid)?.time_zone;
        Some(Self { cid, lid, zone })
    }
}

/// Optional keys (`seat_id`, `seat_name`, `cancelled`) are left out, not null (doc §9.6).
fn render(data: &Data, row: &BookingRow, place: &Place) -> Value {
    let local = |at: DateTime<Utc>| {
        at.with_timezone(&place.zone)
            .fixed_offset()
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    };
    let name = |found: Option<&str>| json!(found.unwrap_or_default());
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| object.insert(key.to_owned(), value);
    put("id", json!(row.id));
    put("bookId", json!(row.book_id));
    put("eid", json!(row.eid));
    put("cid", json!(place.cid));
    put("lid", json!(place.lid));
    put("fromDate", json!(local(row.from)));
    put("toDate", json!(local(row.to)));
    put("created", json!(local(row.created)));
    put("firstName", json!(row.first_name));
    put("lastName", json!(row.last_name));
    put("email", json!(row.email));
    put("account", json!(""));
    put("status", json!(row.status.as_str()));
    let location = data.location(place.lid).map(|l| l.name.as_str());
    put("location_name", name(location));
    let category = data.category(place.cid).map(|c| c.name.as_str());
    put("category_name", name(category));
    put(
        "item_name",
        name(data.space(row.eid).map(|s| s.name.as_str())),
    );
    if let Some(seat) = row.seat_id {
        put("seat_id", json!(seat));
        put("seat_name", name(data.seat(seat).map(|s| s.name.as_str())));
    }
    if let Some(at) = row.cancelled {
        put("cancelled", json!(local(at)));
    }
    Value::Object(object)
}
