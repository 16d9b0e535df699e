//! LibCal's locations, categories, spaces and seats, sent to intake's catalogue endpoints
//! (design §3.1) when they differ from what was last sent: a location gets the zone of the
//! configuration (LibCal names none), a space booked whole, per seat, or a seat its kind.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    configuration::LibcalSettings,
    intake::{Intake, Unavailable},
    libcal::{BookingRow, LibCal, LibcalError},
    mapping::{self, category_id, location_id, seat_id, space_id},
    state,
};

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("reading LibCal's catalogue failed")]
    LibCal(#[from] LibcalError),
    #[error("sending the catalogue to booking-intake failed")]
    Intake(#[from] Unavailable),
    #[error("the connector's database failed")]
    Database(#[from] sqlx::Error),
}

/// What the sync did, for its log line.
#[derive(Debug, Default)]
pub struct Synced {
    pub written: usize,
    pub unchanged: usize,
    pub refused: usize,
}

/// The catalogue as last sent to intake, by intake path (`v1/spaces/libcal-space-8803`).
pub struct Catalogue {
    sent: HashMap<String, Value>,
}

/// One entry to send: its intake path and body.
type Entry = (String, Value);

impl Catalogue {
    pub async fn load(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sent: state::catalogue(pool).await?,
        })
    }

    /// Intake lacks something it was sent (its database restored from an older backup,
    /// say): the next sync sends every entry again, each answered 200 if intake has it.
    pub fn forget_sent(&mut self) {
        self.sent.clear();
    }

    /// Whether intake has the space (or seat) this row books.
    pub fn has_space_of(&self, row: &BookingRow) -> bool {
        self.sent.contains_key(&space_path(row))
    }

    /// Reads the configured locations' catalogue from LibCal and sends what changed.
    pub async fn sync(
        &mut self,
        libcal: &LibCal,
        intake: &Intake,
        pool: &PgPool,
        settings: &LibcalSettings,
    ) -> Result<Synced, CatalogueError> {
        let entries = read(libcal, settings).await?;
        let mut synced = Synced::default();
        for (path, body) in entries {
            self.send(intake, pool, path, body, &mut synced).await?;
        }
        Ok(synced)
    }

    /// A seat known only from a booking of it (LibCal without its Seats module lists none).
    pub async fn add_seat_of(
        &mut self,
        row: &BookingRow,
        intake: &Intake,
        pool: &PgPool,
    ) -> Result<(), CatalogueError> {
        let Some(seat) = row.seat() else {
            return Ok(());
        };
        let name = row
            .seat_name
            .clone()
            .unwrap_or_else(|| format!("Seat {seat}"));
        let body = seat_body(row.cid, None, &name);
        self.send(intake, pool, space_path(row), body, &mut Synced::default())
            .await
    }

    async fn send(
        &mut self,
        intake: &Intake,
        pool: &PgPool,
        path: String,
        body: Value,
        synced: &mut Synced,
    ) -> Result<(), CatalogueError> {
        if self.sent.get(&path) == Some(&body) {
            synced.unchanged += 1;
            return Ok(());
        }
        match intake.put_catalogue(&path, &body).await? {
            Ok(()) => {
                state::catalogue_sent(pool, &path, &body).await?;
                self.sent.insert(path, body);
                synced.written += 1;
            }
            Err(reason) => {
                // A linked space LibCal now books per seat, say: staff must unlink it first.
                tracing::warn!(%path, %reason, "booking-intake refused a catalogue entry");
                synced.refused += 1;
            }
        }
        Ok(())
    }
}

fn space_path(row: &BookingRow) -> String {
    match row.seat() {
        Some(seat) => format!("v1/spaces/{}", seat_id(seat)),
        None => format!("v1/spaces/{}", space_id(row.eid)),
    }
}

fn seat_body(cid: u64, space_name: Option<&str>, seat_name: &str) -> Value {
    let name = match space_name {
        Some(space) => format!("{} – {}", space.trim(), seat_name.trim()),
        None => seat_name.to_owned(),
    };
    json!({"category_id": category_id(cid), "name": mapping::name(&name), "kind": "seat"})
}

/// Everything of the configured locations, parents before children (intake checks them).
async fn read(libcal: &LibCal, settings: &LibcalSettings) -> Result<Vec<Entry>, CatalogueError> {
    let wanted: Vec<u64> = settings
        .location_ids
        .iter()
        .map(|&lid| lid.into())
        .collect();
    let mut entries = Vec::new();
    let listed = libcal.locations().await?;
    for &lid in &wanted {
        match listed.iter().find(|l| l.lid == lid) {
            Some(location) => entries.push((
                format!("v1/locations/{}", location_id(lid)),
                json!({
                    "name": mapping::name(&location.name),
                    "time_zone": settings.zone_of(lid as u32).name(),
                }),
            )),
            None => tracing::warn!(
                lid,
                "LibCal does not list this location of libcal.location_ids"
            ),
        }
    }
    let mut lid_of_category = HashMap::new();
    for element in libcal.categories(&wanted).await? {
        if let Some(error) = element.error {
            tracing::warn!(lid = element.lid, %error, "LibCal refused a location's categories");
            continue;
        }
        let Some(lid) = element.lid.filter(|lid| wanted.contains(lid)) else {
            continue;
        };
        for category in element.categories {
            lid_of_category.insert(category.cid, lid);
            entries.push((
                format!("v1/categories/{}", category_id(category.cid)),
                json!({"location_id": location_id(lid), "name": mapping::name(&category.name)}),
            ));
        }
    }
    let cids: Vec<u64> = lid_of_category.keys().copied().collect();
    let mut category_of_item = HashMap::new();
    for element in libcal.category_items(&cids).await? {
        match (element.cid, &element.error) {
            (Some(cid), None) => {
                for eid in element.item_ids() {
                    category_of_item.insert(eid, cid);
                }
            }
            (cid, error) => tracing::warn!(?cid, ?error, "LibCal refused a category's spaces"),
        }
    }
    let eids: Vec<u64> = category_of_item.keys().copied().collect();
    let mut containers = Vec::new();
    let mut seen = HashSet::new();
    for item in libcal.items(&eids).await? {
        let (Some(eid), None) = (item.id, &item.error) else {
            tracing::warn!(id = ?item.id, error = ?item.error, "LibCal refused a space");
            continue;
        };
        let Some(&cid) = category_of_item.get(&eid) else {
            continue;
        };
        if !seen.insert(eid) {
            continue;
        }
        let name = item.name.unwrap_or_else(|| format!("Space {eid}"));
        // Absent on instances without seats: then every space is booked whole.
        let whole = item.bookable_as_whole.unwrap_or(true);
        entries.push((
            format!("v1/spaces/{}", space_id(eid)),
            json!({
                "category_id": category_id(cid),
                "name": mapping::name(&name),
                "kind": if whole { "bookable_as_whole" } else { "container" },
            }),
        ));
        if !whole {
            containers.push((lid_of_category[&cid], cid, eid, name));
        }
    }
    for (lid, cid, eid, space_name) in containers {
        // None: no Seats module; the seats come with their bookings.
        for seat in libcal.seats(lid, eid).await?.unwrap_or_default() {
            entries.push((
                format!("v1/spaces/{}", seat_id(seat.id)),
                seat_body(cid, Some(&space_name), &seat.name),
            ));
        }
    }
    Ok(entries)
}
