//! Storing booking changes: each ordered against its booking as stored under the booking's lock,
//! written with the event it deserves in one transaction, many changes to one commit.
//!
//! Under load a write costs its round trips and its commit far more than its work. A batch
//! takes the locks of all its bookings in the statement that begins its transaction, reads them
//! in one statement, writes them in one and their events in one, and commits once: five round
//! trips for the batch where there were five per booking. Each change is still decided on its
//! own, so a refused change refuses only itself.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lockbridge_domain::{
    BookingId, BookingStatus, BookingWindow, LocationId, Patron, SpaceId, TimeZone, TraceParent,
    events::{BookingData, Envelope, EventType},
};
use lockbridge_http::problem::Problem;
use lockbridge_runtime::{outbox, wakeup::Channel};
use lockbridge_sealing::pins::PinSealer;
use sqlx::{PgPool, Postgres, Transaction, types::Json as Jsonb};
use uuid::Uuid;

use crate::{
    auth::Source,
    view::{BookingView, PinRow, ViewRow},
};

/// What the source says about a booking: the part whose change is worth an event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BookingContent {
    pub space_id: SpaceId,
    pub window: BookingWindow,
    pub status: BookingStatus,
    pub patron: Patron,
}

/// What a source asks of a booking.
pub(crate) enum Change {
    Put {
        content: BookingContent,
        revision: Option<i64>,
    },
    /// A cancel carries no revision: it keeps the stored one and is never stale.
    Cancel,
}

/// One source's change to one booking.
pub(crate) struct Request {
    pub source: Source,
    pub booking_id: BookingId,
    pub change: Change,
    /// The upstream's trace context, continued by the event the change causes.
    pub trace: Option<TraceParent>,
}

/// Changes under way: one transaction, begun holding the lock of every booking in it, which
/// serializes the writers of one booking (two first PUTs racing to insert it included), and
/// each booking as read under its lock. Dropped without [`Batch::apply`], it rolls back.
pub(crate) struct Batch<'a> {
    tx: Transaction<'static, Postgres>,
    /// Opens the PINs of the answers.
    pins: &'a PinSealer,
    items: Vec<(&'a Request, Current)>,
}

impl<'a> Batch<'a> {
    /// Begins the batch of `requests`, which name distinct bookings: two changes of one booking
    /// are two batches, one after the other.
    pub(crate) async fn begin(
        pool: &PgPool,
        pins: &'a PinSealer,
        requests: &'a [Request],
    ) -> Result<Self, sqlx::Error> {
        debug_assert!(
            requests
                .iter()
                .map(|r| &r.booking_id)
                .collect::<std::collections::HashSet<_>>()
                .len()
                == requests.len(),
            "a batch names each booking once"
        );
        // Every batch takes its locks in the order of their keys, so two batches sharing
        // bookings wait for each other instead of deadlocking. The locks are taken by the
        // statement that begins the transaction. It is a simple query, so the ids are written
        // into it: a BookingId holds only ASCII letters, digits and `._:-`, nothing that can
        // end a string literal.
        let ids: Vec<String> = requests
            .iter()
            .map(|r| format!("'{}'", r.booking_id.as_str()))
            .collect();
        let mut tx = pool
            .begin_with(format!(
                "BEGIN; SELECT pg_advisory_xact_lock(key) FROM (
                     SELECT DISTINCT hashtextextended(id, 0) AS key
                     FROM unnest(ARRAY[{}]::text[]) AS id ORDER BY key) AS keys",
                ids.join(",")
            ))
            .await?;
        let booking_ids: Vec<&str> = requests.iter().map(|r| r.booking_id.as_str()).collect();
        let space_ids: Vec<Option<&str>> = requests
            .iter()
            .map(|r| match &r.change {
                Change::Put { content, .. } => Some(content.space_id.as_str()),
                Change::Cancel => None,
            })
            .collect();
        let rows: Vec<Current> = sqlx::query_as(
            "WITH asked AS (
                 SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY
                     AS a (booking_id, space_id, n)),
             stored AS (
                 SELECT b.booking_id, b.source, b.space_id, b.starts_at, b.ends_at, b.status,
                        b.patron_name, b.patron_email, b.revision, b.correlation_id,
                        b.created_at, b.updated_at
                 FROM bookings b JOIN asked USING (booking_id))
             SELECT (SELECT to_jsonb(s) FROM stored s
                         WHERE s.booking_id = a.booking_id) AS stored,
                    (SELECT jsonb_build_object(
                                'location_id', l.location_id, 'time_zone', l.time_zone,
                                'linked', EXISTS (SELECT 1 FROM lock_links k
                                                  WHERE k.space_id = s.space_id))
                     FROM spaces s JOIN categories c USING (category_id)
                          JOIN locations l USING (location_id)
                     WHERE s.space_id = coalesce(a.space_id,
                               (SELECT space_id FROM stored WHERE booking_id = a.booking_id))
                    ) AS place,
                    p.state AS pin_state, p.pin_sealed, p.synced_at, p.pin_sent_at, p.valid_from, p.valid_until
             FROM asked a LEFT JOIN booking_pins p ON p.booking_id = a.booking_id
             ORDER BY a.n",
        )
        // Planned anew each time: a plan cached while the table was small scans all of it.
        .persistent(false)
        .bind(booking_ids)
        .bind(space_ids)
        .fetch_all(&mut *tx)
        .await?;
        Ok(Self {
            tx,
            pins,
            items: requests.iter().zip(rows).collect(),
        })
    }

    /// The transaction, for what must commit or roll back with the changes.
    pub(crate) fn transaction(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }

    /// Decides each change against its booking as stored, stores those accepted and the events
    /// they deserve, and commits. Answers each request in order: the booking as it now is, or
    /// why its change was refused. A database error fails the whole batch.
    pub(crate) async fn apply(self) -> Result<Vec<Answer>, sqlx::Error> {
        self.stage().await?.commit().await
    }

    /// As [`Batch::apply`], without committing yet.
    pub(crate) async fn stage(self) -> Result<Staged, sqlx::Error> {
        let Self {
            mut tx,
            pins,
            items,
        } = self;
        let decided: Vec<_> = items
            .into_iter()
            .map(|(request, current)| {
                let decision = decide(request, &current);
                (request, current, decision)
            })
            .collect();
        let writes: Vec<(&Request, &Decision)> = decided
            .iter()
            .filter_map(|(request, _, decision)| match decision {
                Ok(decision) if decision.written.is_some() => Some((*request, decision)),
                _ => None,
            })
            .collect();
        let stamps = write_bookings(&mut tx, &writes).await?;
        let events: Vec<Envelope<BookingData>> = writes
            .iter()
            .filter_map(|(request, decision)| decision.event(request))
            .collect();
        outbox::enqueue_all(&mut tx, crate::PRODUCER, &events).await?;
        let answers = decided
            .into_iter()
            .map(|(request, current, decision)| {
                let decision = decision?;
                let (created_at, updated_at) = match decision.written {
                    Some(_) => stamps[&request.booking_id],
                    None => decision.stamps.expect("an unwritten booking is stored"),
                };
                let view = ViewRow {
                    booking_id: request.booking_id.clone(),
                    space_id: decision.content.space_id,
                    starts_at: decision.content.window.starts_at(),
                    ends_at: decision.content.window.ends_at(),
                    status: decision.content.status,
                    patron_name: decision.content.patron.name,
                    patron_email: decision.content.patron.email,
                    revision: decision.revision,
                    time_zone: decision.place.time_zone,
                    created_at,
                    updated_at,
                    linked: decision.place.linked,
                    pin: current.pin,
                }
                .view(pins)?;
                Ok(view)
            })
            .collect();
        let announced = events
            .into_iter()
            .map(|event| (event.data.booking_id, event.event_type, event.event_id))
            .collect();
        Ok(Staged {
            tx,
            answers,
            announced,
        })
    }
}

/// What a change comes to: the booking as it now is, or why the change was refused.
pub(crate) type Answer = Result<BookingView, Problem>;

/// A batch written but not committed: its answers can be read first, and dropped, it rolls
/// back.
pub(crate) struct Staged {
    tx: Transaction<'static, Postgres>,
    answers: Vec<Answer>,
    /// The events written, to log once they are committed.
    announced: Vec<(BookingId, EventType, Uuid)>,
}

impl Staged {
    pub(crate) fn answers(&self) -> &[Answer] {
        &self.answers
    }

    pub(crate) async fn commit(self) -> Result<Vec<Answer>, sqlx::Error> {
        self.tx.commit().await?;
        if !self.announced.is_empty() {
            Channel::outbox(crate::PRODUCER).ring();
        }
        for (booking_id, event_type, event_id) in &self.announced {
            tracing::info!(%booking_id, event_type = event_type.as_str(), %event_id, "booking stored");
        }
        Ok(self.answers)
    }
}

/// Upserts the accepted changes in one statement; answers each booking's timestamps.
async fn write_bookings(
    tx: &mut Transaction<'static, Postgres>,
    writes: &[(&Request, &Decision)],
) -> Result<HashMap<BookingId, (DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    if writes.is_empty() {
        return Ok(HashMap::new());
    }
    let column = |f: fn(&Request, &Decision) -> String| -> Vec<String> {
        writes.iter().map(|(r, d)| f(r, d)).collect()
    };
    let rows: Vec<(BookingId, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO bookings (booking_id, source, space_id, starts_at, ends_at, status,
                               patron_name, patron_email, revision, correlation_id,
                               traceparent)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                              $5::timestamptz[], $6::booking_status[], $7::text[], $8::text[],
                              $9::int8[], $10::uuid[], $11::text[])
         ON CONFLICT (booking_id) DO UPDATE SET space_id = EXCLUDED.space_id,
             starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, status = EXCLUDED.status,
             patron_name = EXCLUDED.patron_name, patron_email = EXCLUDED.patron_email,
             revision = EXCLUDED.revision, traceparent = EXCLUDED.traceparent,
             -- Written again with a patron: retention purges it anew once it is due.
             purged_at = NULL, updated_at = now()
         RETURNING booking_id, created_at, updated_at",
    )
    .bind(column(|r, _| r.booking_id.as_str().to_owned()))
    .bind(column(|r, _| r.source.0.clone()))
    .bind(column(|_, d| d.content.space_id.as_str().to_owned()))
    .bind(
        writes
            .iter()
            .map(|(_, d)| d.content.window.starts_at())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|(_, d)| d.content.window.ends_at())
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|(_, d)| d.content.status)
            .collect::<Vec<_>>(),
    )
    .bind(column(|_, d| d.content.patron.name.clone()))
    .bind(column(|_, d| d.content.patron.email.clone()))
    .bind(writes.iter().map(|(_, d)| d.revision).collect::<Vec<_>>())
    .bind(
        writes
            .iter()
            .map(|(_, d)| d.written.as_ref().expect("only writes").correlation_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        writes
            .iter()
            .map(|(r, _)| r.trace.as_ref().map(ToString::to_string))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, created, updated)| (id, (created, updated)))
        .collect())
}

/// The booking as stored, read as one JSON value so that "no booking yet" is one `None`.
#[derive(serde::Deserialize)]
struct StoredRow {
    source: String,
    space_id: SpaceId,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    status: BookingStatus,
    patron_name: String,
    patron_email: String,
    revision: Option<i64>,
    correlation_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl StoredRow {
    fn content(&self) -> BookingContent {
        BookingContent {
            space_id: self.space_id.clone(),
            window: BookingWindow::new(self.starts_at, self.ends_at)
                .expect("the schema checks ends_at > starts_at"),
            status: self.status,
            patron: Patron {
                name: self.patron_name.clone(),
                email: self.patron_email.clone(),
            },
        }
    }
}

/// Where a space is: its location and that location's zone, and whether it has a lock.
#[derive(Clone, serde::Deserialize)]
struct SpacePlace {
    location_id: LocationId,
    time_zone: String,
    linked: bool,
}

/// What a change reads under its booking's lock.
#[derive(sqlx::FromRow)]
struct Current {
    stored: Option<Jsonb<StoredRow>>,
    /// Of the space the request names, or for a cancel the stored one; `None`: no such space.
    place: Option<Jsonb<SpacePlace>>,
    #[sqlx(flatten)]
    pin: PinRow,
}

/// What a change comes to: the booking as it will be, and whether that is new.
struct Decision {
    content: BookingContent,
    revision: Option<i64>,
    place: SpacePlace,
    /// `Some` when the row must be written; `None` for a repeat of what is stored.
    written: Option<Written>,
    /// The stored row's timestamps, for a repeat.
    stamps: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

struct Written {
    correlation_id: Uuid,
    event: Option<EventType>,
}

impl Decision {
    /// The event announcing the change, if it deserves one.
    fn event(&self, request: &Request) -> Option<Envelope<BookingData>> {
        let written = self.written.as_ref()?;
        let event_type = written.event?;
        let data = BookingData {
            booking_id: request.booking_id.clone(),
            source: request.source.0.clone(),
            space_id: self.content.space_id.clone(),
            location_id: self.place.location_id.clone(),
            starts_at: self.content.window.starts_at(),
            ends_at: self.content.window.ends_at(),
            status: self.content.status,
            patron: self.content.patron.clone(),
            revision: self.revision,
            time_zone: TimeZone::from_stored(&self.place.time_zone),
        };
        Some(Envelope::new(event_type, written.correlation_id, data).traced(request.trace.as_ref()))
    }
}

/// Orders a change against the booking as it is under the lock (so a cancel racing an update
/// cancels the updated booking) and decides what it comes to.
fn decide(request: &Request, current: &Current) -> Result<Decision, Problem> {
    let stored = current.stored.as_ref().map(|Jsonb(stored)| stored);
    let (content, revision) = match &request.change {
        Change::Put { content, revision } => {
            if let Some(stored) = stored {
                check_order(&request.source, stored, content, *revision)?;
            }
            (content.clone(), *revision)
        }
        Change::Cancel => match stored.filter(|s| s.source == request.source.0) {
            Some(stored) => (
                BookingContent {
                    status: BookingStatus::Cancelled,
                    ..stored.content()
                },
                None,
            ),
            None => return Err(Problem::not_found("no such booking")),
        },
    };
    let Some(Jsonb(place)) = &current.place else {
        return Err(Problem::invalid_field(
            "space_id",
            "no such space: create it first with PUT /v1/spaces/{id}",
        ));
    };
    let before = stored.map(StoredRow::content);
    let revision = revision.or(stored.and_then(|s| s.revision));
    let unchanged =
        before.as_ref() == Some(&content) && stored.and_then(|s| s.revision) == revision;
    let written = (!unchanged).then(|| Written {
        correlation_id: stored.map_or_else(Uuid::now_v7, |s| s.correlation_id),
        event: event_for(before.as_ref(), &content),
    });
    Ok(Decision {
        content,
        revision,
        place: place.clone(),
        written,
        stamps: stored.map(|s| (s.created_at, s.updated_at)),
    })
}

/// The event a change deserves, if any. Tentative bookings get no PIN, so they say nothing
/// until confirmed; a confirmed booking announces every real change.
fn event_for(before: Option<&BookingContent>, after: &BookingContent) -> Option<EventType> {
    use BookingStatus::{Cancelled, Confirmed, Tentative};
    match (before.map(|b| b.status), after.status) {
        (None | Some(Tentative | Cancelled), Confirmed) => Some(EventType::BookingConfirmed),
        (Some(Confirmed), Confirmed) => {
            (before != Some(after)).then_some(EventType::BookingChanged)
        }
        // Back to awaiting approval: its PIN must stop working until it is confirmed again.
        (Some(Confirmed), Tentative) => Some(EventType::BookingChanged),
        (Some(Confirmed | Tentative), Cancelled) => Some(EventType::BookingCancelled),
        _ => None,
    }
}

fn check_order(
    source: &Source,
    stored: &StoredRow,
    content: &BookingContent,
    revision: Option<i64>,
) -> Result<(), Problem> {
    if stored.source != source.0 {
        return Err(Problem::conflict(
            "booking_id",
            "this booking id belongs to another source",
        ));
    }
    match (stored.revision, revision) {
        (Some(have), Some(got)) if got < have => Err(Problem::conflict(
            "revision",
            format!("revision {got} is older than the stored revision {have}; nothing was changed"),
        )),
        (Some(have), Some(got)) if got == have && stored.content() != *content => {
            Err(Problem::conflict(
                "revision",
                format!(
                    "revision {got} is already stored with different content; send a higher revision"
                ),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(status: BookingStatus, hour: u32) -> BookingContent {
        let start = DateTime::parse_from_rfc3339(&format!("2026-12-01T{hour:02}:00:00Z"))
            .unwrap()
            .with_timezone(&Utc);
        BookingContent {
            space_id: SpaceId::parse("sp-1").unwrap(),
            window: BookingWindow::new(start, start + chrono::Duration::hours(1)).unwrap(),
            status,
            patron: Patron {
                name: "Ada".into(),
                email: "ada@example.edu".into(),
            },
        }
    }

    #[test]
    fn events_follow_status_and_real_changes() {
        use BookingStatus::*;
        use EventType::*;
        // (stored status and start hour, if any; the PUT's; the event it emits)
        let cases = [
            (None, (Tentative, 9), None),
            (None, (Confirmed, 9), Some(BookingConfirmed)),
            (Some((Tentative, 9)), (Confirmed, 9), Some(BookingConfirmed)),
            (Some((Confirmed, 9)), (Confirmed, 9), None),
            (Some((Confirmed, 9)), (Confirmed, 10), Some(BookingChanged)),
            (Some((Confirmed, 9)), (Tentative, 9), Some(BookingChanged)),
            (Some((Confirmed, 9)), (Cancelled, 9), Some(BookingCancelled)),
            (Some((Tentative, 9)), (Tentative, 10), None),
            (Some((Cancelled, 9)), (Cancelled, 9), None),
            (Some((Cancelled, 9)), (Confirmed, 9), Some(BookingConfirmed)),
        ];
        for (before, (status, hour), expected) in cases {
            let before = before.map(|(status, hour)| content(status, hour));
            let after = content(status, hour);
            assert_eq!(
                event_for(before.as_ref(), &after),
                expected,
                "{before:?} -> {after:?}"
            );
        }
    }
}
