-- lockbridge schema. One database; each table is owned (written) by one service, as noted.

-- ── booking-intake: catalogue and bookings ─────────────────────────────────────────────
CREATE TABLE locations (
    location_id  TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    time_zone    TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    category_id  TEXT PRIMARY KEY,
    location_id  TEXT NOT NULL REFERENCES locations (location_id),
    name         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TYPE space_kind AS ENUM ('bookable_as_whole', 'container', 'seat');

CREATE TABLE spaces (
    space_id     TEXT PRIMARY KEY,
    category_id  TEXT NOT NULL REFERENCES categories (category_id),
    name         TEXT NOT NULL,
    kind         space_kind NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Target of lock_links' composite foreign key: lets the schema itself insist that only
    -- spaces bookable as a whole are linked, and that a linked space cannot change kind.
    UNIQUE (space_id, kind)
);

CREATE TYPE booking_status AS ENUM ('tentative', 'confirmed', 'cancelled');

CREATE TABLE bookings (
    booking_id      TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    space_id        TEXT NOT NULL REFERENCES spaces (space_id),
    starts_at       TIMESTAMPTZ NOT NULL,
    ends_at         TIMESTAMPTZ NOT NULL,
    status          booking_status NOT NULL,
    patron_name     TEXT NOT NULL,
    patron_email    TEXT NOT NULL,
    revision        BIGINT,
    correlation_id  UUID NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX bookings_space_starts ON bookings (space_id, starts_at);

-- ── shared: transactional outbox (each service relays only its own producer's rows) ────
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    producer      TEXT NOT NULL,
    event_id      UUID NOT NULL UNIQUE,
    exchange      TEXT NOT NULL,
    routing_key   TEXT NOT NULL,
    payload       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts      INT NOT NULL DEFAULT 0,
    last_error    TEXT,
    published_at  TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (producer, id) WHERE published_at IS NULL;

-- Wakes the producer's relay at once instead of waiting for its next poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_' || NEW.producer, NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_notify();

-- ── shared: idempotent consumers claim each event by inserting it ─────────────────────
CREATE TABLE processed_events (
    consumer      TEXT NOT NULL,
    event_id      UUID NOT NULL,
    processed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- ── shared: durable jobs with retry policy and leases (provisioner, notifier) ─────────
CREATE TYPE job_state AS ENUM ('queued', 'running', 'succeeded', 'failed');

CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    queue         TEXT NOT NULL,
    job_key       TEXT NOT NULL,
    payload       JSONB NOT NULL,
    -- Under a backlog the job whose deadline (e.g. booking start) is soonest runs first.
    priority_at   TIMESTAMPTZ NOT NULL,
    run_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    state         job_state NOT NULL DEFAULT 'queued',
    attempts      INT NOT NULL DEFAULT 0,
    -- Bumped when the job is asked for again while it runs: the run that finishes then
    -- queues it once more instead of marking it done.
    version       INT NOT NULL DEFAULT 0,
    lease_until   TIMESTAMPTZ,
    -- Set by each claim: a worker whose lease ran out and was taken over can neither renew
    -- nor finish the job.
    lease_token   UUID,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (queue, job_key)
);
CREATE INDEX jobs_ready ON jobs (queue, priority_at) WHERE state IN ('queued', 'running');

CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'queued' THEN
        PERFORM pg_notify('jobs_' || NEW.queue, NEW.id::text);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_queued AFTER INSERT OR UPDATE OF state, run_at ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_notify();

-- ── admin: RemoteLock authorization and links ────────────────────────────────────────
CREATE TABLE remotelock_authorization (
    -- At most one authorization: the row's key can only be TRUE.
    id                  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    account_id          TEXT,
    account_name        TEXT,
    access_token_enc    BYTEA NOT NULL,
    refresh_token_enc   BYTEA,
    access_expires_at   TIMESTAMPTZ NOT NULL,
    authorized_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    refreshed_at        TIMESTAMPTZ
);

CREATE TABLE oauth_states (
    state       TEXT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE lock_links (
    space_id          TEXT PRIMARY KEY,
    -- Always 'bookable_as_whole': with the composite key below, the database refuses links to
    -- containers and seats, and refuses turning a linked space into one.
    space_kind        space_kind NOT NULL DEFAULT 'bookable_as_whole'
                      CHECK (space_kind = 'bookable_as_whole'),
    lock_id           TEXT NOT NULL UNIQUE,
    lock_name         TEXT NOT NULL,
    -- Links hang off the authorization: it cannot be deleted while one exists.
    authorization_id  BOOLEAN NOT NULL DEFAULT TRUE
                      REFERENCES remotelock_authorization (id) ON DELETE RESTRICT,
    linked_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (space_id, space_kind) REFERENCES spaces (space_id, kind)
);

-- ── lock-provisioner: one PIN record per booking ─────────────────────────────────────
CREATE TYPE pin_state AS ENUM ('not_applicable', 'pending', 'issued', 'failed', 'revoked');

CREATE TABLE booking_pins (
    booking_id          TEXT PRIMARY KEY,
    correlation_id      UUID NOT NULL,
    state               pin_state NOT NULL,
    -- The space the guest was made for: a booking moved elsewhere must not keep its door.
    space_id            TEXT,
    lock_id             TEXT,
    -- Written before RemoteLock is called, so a retry after a lost response finds the guest
    -- instead of creating a second one.
    guest_name          TEXT,
    create_requested_at TIMESTAMPTZ,
    guest_id            TEXT,
    access_id           TEXT,
    pin                 TEXT,
    pin_version         INT NOT NULL DEFAULT 0,
    valid_from          TIMESTAMPTZ,
    valid_until         TIMESTAMPTZ,
    time_zone           TEXT,
    last_error          TEXT,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE pin_history (
    id           BIGSERIAL PRIMARY KEY,
    booking_id   TEXT NOT NULL,
    state        pin_state NOT NULL,
    detail       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pin_history_booking ON pin_history (booking_id, at);

-- ── notifier: one row per email sent ─────────────────────────────────────────────────
CREATE TABLE sent_emails (
    booking_id   TEXT NOT NULL,
    pin_version  INT NOT NULL,
    event_id     UUID NOT NULL,
    recipient    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    sent_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, pin_version)
);
