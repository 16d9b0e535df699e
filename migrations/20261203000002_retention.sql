-- Retention (issue 9): a booking's personal data goes `retention.days` after it ends, and what
-- only served the pipeline (handled event ids, published events, finished jobs) after
-- `retention.prune_after`. Written only by crates/retention (migrations/README.md).

-- When the booking's patron (and everything quoting them) was purged; booking-intake sets it
-- back to NULL when the upstream writes the booking again, so it is purged anew once due.
ALTER TABLE bookings ADD COLUMN purged_at TIMESTAMPTZ;

-- The purge's scan: bookings not yet purged, oldest end first.
CREATE INDEX bookings_unpurged_ends ON bookings (ends_at) WHERE purged_at IS NULL;

-- The prune's scans, oldest first.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state IN ('succeeded', 'failed');
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

-- The purge's lookups of a booking's failures (the other tables it touches are keyed by
-- booking already).
CREATE INDEX failures_booking ON failures (booking_id) WHERE booking_id IS NOT NULL;

-- The rows about a booking that carry its event (a patron, a PIN): outbox rows and the jobs
-- whose payload is an event envelope (the PIN emails).
CREATE INDEX outbox_booking ON outbox ((payload -> 'data' ->> 'booking_id'));
CREATE INDEX jobs_event_booking ON jobs ((payload -> 'data' ->> 'booking_id'))
    WHERE payload ? 'data';

-- Text that may quote a purged patron (a RemoteLock or SMTP error kept as a reason): each of
-- `terms` (their name, address, guest name), longest first so an address goes before the
-- name inside it, and then anything shaped like an address, is replaced.
CREATE FUNCTION retention_scrub(body TEXT, terms TEXT[]) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    term TEXT;
BEGIN
    IF body IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH term IN ARRAY
        (SELECT coalesce(array_agg(t ORDER BY length(t) DESC), '{}')
         FROM unnest(terms) AS t WHERE t <> '')
    LOOP
        body := replace(body, term, '(purged)');
    END LOOP;
    RETURN regexp_replace(body, '[^[:space:]<>"'',;:()]+@[^[:space:]<>"'',;:()]+', '(purged)', 'g');
END $$;
