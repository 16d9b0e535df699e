//! What staff set on the Settings page (issue 8), in `staff_settings`: lead time and grace
//! everywhere, per location and per space — the most specific set value wins, resolved by the
//! view `space_window_settings`, which the provisioner reads too — and, everywhere only, the
//! PIN length and the staff alert recipients. What is not set leaves the configuration in
//! force. A change of lead time or grace queues the upcoming bookings it concerns, so their
//! PINs follow the new window instead of keeping the old one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lockbridge_domain::{BookingId, BookingWindow, LocationId, SpaceId};
use lockbridge_work::provisioning;
use sqlx::{PgPool, Postgres, Transaction};

/// Where a lead time or grace applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Everywhere,
    Location(LocationId),
    Space(SpaceId),
}

impl Scope {
    /// As `staff_settings` keys it.
    fn key(&self) -> (&'static str, &str) {
        match self {
            Self::Everywhere => ("everywhere", ""),
            Self::Location(id) => ("location", id.as_str()),
            Self::Space(id) => ("space", id.as_str()),
        }
    }

    fn from_key(scope: &str, id: &str) -> Option<Self> {
        match scope {
            "everywhere" => Some(Self::Everywhere),
            "location" => LocationId::parse(id).ok().map(Self::Location),
            "space" => SpaceId::parse(id).ok().map(Self::Space),
            _ => None,
        }
    }

    /// As a form names it: `everywhere`, `location:main`, `space:sp-101`.
    pub fn form_value(&self) -> String {
        match self.key() {
            (scope, "") => scope.to_owned(),
            (scope, id) => format!("{scope}:{id}"),
        }
    }

    pub fn from_form(value: &str) -> Option<Self> {
        let (scope, id) = value.split_once(':').unwrap_or((value, ""));
        Self::from_key(scope, id)
    }
}

/// The catalogue has the location or space (everywhere always is).
pub(crate) async fn exists(pool: &PgPool, scope: &Scope) -> Result<bool, sqlx::Error> {
    let (kind, id) = scope.key();
    sqlx::query_scalar(
        "SELECT $1 = 'everywhere'
             OR ($1 = 'location' AND EXISTS (SELECT 1 FROM locations WHERE location_id = $2))
             OR ($1 = 'space' AND EXISTS (SELECT 1 FROM spaces WHERE space_id = $2))",
    )
    .bind(kind)
    .bind(id)
    .fetch_one(pool)
    .await
}

/// A lead time and a grace as set for one scope; `None`: not set there.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    pub lead_time: Option<Duration>,
    pub grace: Option<Duration>,
}

fn secs(duration: Option<Duration>) -> Option<i32> {
    duration.map(|d| i32::try_from(d.as_secs()).expect("validated to at most 24 hours"))
}

/// Sets `scope`'s lead time and grace (neither: clears them) and queues the upcoming bookings
/// of the scope's linked spaces; answers how many.
pub(crate) async fn save_window(
    pool: &PgPool,
    scope: &Scope,
    window: Window,
    by: &str,
) -> Result<u64, sqlx::Error> {
    let (kind, id) = scope.key();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO staff_settings (scope, scope_id, lead_time_secs, grace_secs, updated_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, scope_id) DO UPDATE
             SET lead_time_secs = EXCLUDED.lead_time_secs, grace_secs = EXCLUDED.grace_secs,
                 updated_at = now(), updated_by = EXCLUDED.updated_by",
    )
    .bind(kind)
    .bind(id)
    .bind(secs(window.lead_time))
    .bind(secs(window.grace))
    .bind(by)
    .execute(&mut *tx)
    .await?;
    forget_empty(&mut tx, scope).await?;
    let queued = schedule_upcoming(&mut tx, scope).await?;
    tx.commit().await?;
    Ok(queued)
}

/// Sets the PIN length and the alert recipients (`None`: the configuration's).
pub(crate) async fn save_pins_and_alerts(
    pool: &PgPool,
    pin_digits: Option<u8>,
    alert_recipients: Option<&str>,
    by: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO staff_settings (scope, scope_id, pin_digits, alert_recipients, updated_by)
         VALUES ('everywhere', '', $1, $2, $3)
         ON CONFLICT (scope, scope_id) DO UPDATE
             SET pin_digits = EXCLUDED.pin_digits, alert_recipients = EXCLUDED.alert_recipients,
                 updated_at = now(), updated_by = EXCLUDED.updated_by",
    )
    .bind(pin_digits.map(i16::from))
    .bind(alert_recipients)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    forget_empty(&mut tx, &Scope::Everywhere).await?;
    tx.commit().await
}

/// A row that sets nothing is no setting.
async fn forget_empty(
    tx: &mut Transaction<'_, Postgres>,
    scope: &Scope,
) -> Result<(), sqlx::Error> {
    let (kind, id) = scope.key();
    sqlx::query(
        "DELETE FROM staff_settings WHERE scope = $1 AND scope_id = $2
           AND lead_time_secs IS NULL AND grace_secs IS NULL
           AND pin_digits IS NULL AND alert_recipients IS NULL",
    )
    .bind(kind)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The confirmed bookings of `scope`'s linked spaces that have not ended get their PIN (again,
/// with the window as it now is). In the caller's transaction, so a booking arriving meanwhile
/// is either seen here or sees the change.
pub(crate) async fn schedule_upcoming(
    tx: &mut Transaction<'_, Postgres>,
    scope: &Scope,
) -> Result<u64, sqlx::Error> {
    let (kind, id) = scope.key();
    let upcoming: Vec<(BookingId, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT b.booking_id, b.starts_at, b.ends_at
         FROM bookings b
         JOIN lock_links k ON k.space_id = b.space_id
         JOIN spaces s ON s.space_id = b.space_id
         JOIN categories c ON c.category_id = s.category_id
         WHERE b.status = 'confirmed' AND b.ends_at > now()
           AND ($1 = 'everywhere' OR ($1 = 'location' AND c.location_id = $2)
                OR ($1 = 'space' AND b.space_id = $2))",
    )
    .bind(kind)
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    for (booking_id, starts_at, ends_at) in &upcoming {
        let window = BookingWindow::new(*starts_at, *ends_at)
            .expect("the schema checks ends_at > starts_at");
        provisioning::request(tx, booking_id, &window).await?;
    }
    if !upcoming.is_empty() {
        provisioning::channel().notify(&mut **tx).await?;
    }
    Ok(upcoming.len() as u64)
}

/// A lead time and grace staff set, with what it applies to.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredWindow {
    scope: String,
    scope_id: String,
    /// The location's or the space's name ("" everywhere).
    pub name: String,
    pub lead_time_secs: Option<i32>,
    pub grace_secs: Option<i32>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// The zone of the location concerned; `None` everywhere.
    pub time_zone: Option<String>,
}

impl StoredWindow {
    pub fn scope(&self) -> Option<Scope> {
        Scope::from_key(&self.scope, &self.scope_id)
    }
}

/// Every lead time and grace set, everywhere first, then locations, then spaces.
pub(crate) async fn windows(pool: &PgPool) -> Result<Vec<StoredWindow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT st.scope, st.scope_id, coalesce(s.name, l.name, '') AS name,
                st.lead_time_secs, st.grace_secs, st.updated_at, st.updated_by,
                coalesce(sl.time_zone, l.time_zone) AS time_zone
         FROM staff_settings st
         LEFT JOIN spaces s ON st.scope = 'space' AND s.space_id = st.scope_id
         LEFT JOIN categories c ON c.category_id = s.category_id
         LEFT JOIN locations sl ON sl.location_id = c.location_id
         LEFT JOIN locations l ON st.scope = 'location' AND l.location_id = st.scope_id
         WHERE st.lead_time_secs IS NOT NULL OR st.grace_secs IS NOT NULL
         ORDER BY array_position(ARRAY['everywhere', 'location', 'space'], st.scope), 3",
    )
    .fetch_all(pool)
    .await
}

/// The PIN length and alert recipients set, if any.
pub(crate) async fn pins_and_alerts(
    pool: &PgPool,
) -> Result<(Option<i16>, Option<String>), sqlx::Error> {
    Ok(sqlx::query_as(
        "SELECT pin_digits, alert_recipients FROM staff_settings
         WHERE scope = 'everywhere' AND scope_id = ''",
    )
    .fetch_optional(pool)
    .await?
    .unwrap_or_default())
}

/// Which lead time and grace staff set for a space, and where each was set (`None`: nowhere,
/// the configuration applies).
#[derive(sqlx::FromRow, Default)]
pub(crate) struct Applied {
    pub lead_time_secs: Option<i32>,
    pub lead_time_scope: Option<String>,
    pub grace_secs: Option<i32>,
    pub grace_scope: Option<String>,
}

pub(crate) async fn applied(pool: &PgPool, space_id: &SpaceId) -> Result<Applied, sqlx::Error> {
    Ok(sqlx::query_as(
        "SELECT lead_time_secs, lead_time_scope, grace_secs, grace_scope
         FROM space_window_settings WHERE space_id = $1",
    )
    .bind(space_id)
    .fetch_optional(pool)
    .await?
    .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_goes_through_a_form_and_back() {
        for scope in [
            Scope::Everywhere,
            Scope::Location(LocationId::parse("main").unwrap()),
            Scope::Space(SpaceId::parse("sp-101").unwrap()),
        ] {
            assert_eq!(Scope::from_form(&scope.form_value()), Some(scope));
        }
        assert_eq!(Scope::from_form("room:sp-101"), None);
        assert_eq!(Scope::from_form("space:"), None);
    }
}
