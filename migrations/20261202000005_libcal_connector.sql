-- The LibCal connector's own state (owner: libcal-connector). It is an upstream of the intake
-- API like any other: these tables record what it read from LibCal and how far booking-intake
-- has it, never anything of lockbridge's own.

-- The last body sent to booking-intake for each catalogue entry (a location, category or
-- space, by its intake path), so the catalogue is written only when LibCal's changed.
CREATE TABLE libcal_catalogue (
    path text PRIMARY KEY,
    body jsonb NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);

-- One row per LibCal booking row (not per bookId, which a transaction's rows share).
CREATE TABLE libcal_bookings (
    booking_id text PRIMARY KEY,
    -- LibCal's transaction id, to look a row up on its own when it is missing from the window.
    book_id text NOT NULL,
    location_id bigint NOT NULL,
    starts_at timestamptz NOT NULL,
    -- The intake booking body (without its revision) as LibCal last described the row.
    body jsonb NOT NULL,
    cancelled boolean NOT NULL,
    -- Bumped on every real difference; intake orders by it. 0: nothing worth sending yet
    -- (a row first seen already cancelled).
    revision bigint NOT NULL,
    -- The highest revision booking-intake has accepted (or refused for good, see `refused`).
    sent_revision bigint NOT NULL DEFAULT 0,
    -- Why booking-intake refused `sent_revision` for good (422 …); cleared by a new revision.
    refused text,
    -- Successful polls in a row that covered the row's day and did not return it.
    missing_polls integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    CHECK (sent_revision <= revision)
);

-- What the sender still owes booking-intake, soonest booking first.
CREATE INDEX libcal_bookings_unsent ON libcal_bookings (starts_at)
    WHERE sent_revision < revision;
CREATE INDEX libcal_bookings_by_location ON libcal_bookings (location_id, starts_at);
