-- What RemoteLock reports about the doors (issue 10): the account's events, received by
-- webhook (admin) and by polling GET /events (lock-provisioner), stored once per event id
-- whichever way came first, then applied by the lock-provisioner in the order they happened.
-- Nothing personal is kept: no PIN (keypad events carry the typed one), no name.
CREATE TABLE remotelock_events (
    event_id      TEXT PRIMARY KEY,
    -- The event name without the `_event` suffix: access_person_synced, unlocked, …
    kind          TEXT NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    -- 'webhook' or 'poll': whichever stored it first.
    received_via  TEXT NOT NULL CHECK (received_via IN ('webhook', 'poll')),
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    status        TEXT,
    status_info   TEXT,
    method        TEXT,
    power_level   INTEGER,
    -- The lock (publisher or associated resource, by the event's orientation) and the person.
    lock_id       TEXT,
    person_type   TEXT,
    person_id     TEXT,
    -- Set as the event is applied: the booking whose guest the person is, if any.
    booking_id    TEXT,
    applied_at    TIMESTAMPTZ
);
CREATE INDEX remotelock_events_unapplied ON remotelock_events (occurred_at) WHERE applied_at IS NULL;
CREATE INDEX remotelock_events_booking ON remotelock_events (booking_id, occurred_at) WHERE booking_id IS NOT NULL;
CREATE INDEX remotelock_events_lock ON remotelock_events (lock_id, occurred_at);

-- Whether the lock confirmed the current PIN: access_person_synced sets synced_at, which
-- counts only when it is after pin_sent_at (the lock must take each change anew). The API
-- shows such an issued PIN as `synced`, a state derived, never stored.
ALTER TABLE booking_pins
    -- When the PIN, window or grant was last sent to RemoteLock (before the call): a
    -- confirmation from before it is about what the lock had before.
    ADD COLUMN pin_sent_at TIMESTAMPTZ,
    ADD COLUMN synced_at TIMESTAMPTZ,
    ADD COLUMN sync_error TEXT,
    -- A lock failed to take the PIN for another reason than a conflict: the next run sends it
    -- to the lock again (its access granted anew).
    ADD COLUMN resync_requested_at TIMESTAMPTZ,
    -- How far the not-synced alert went: 0 none, then one step per escalation.
    ADD COLUMN sync_alerts_sent SMALLINT NOT NULL DEFAULT 0;

-- Each lock's health as its events and device reads last said.
CREATE TABLE lock_health (
    lock_id        TEXT PRIMARY KEY,
    connected      BOOLEAN,
    connected_at   TIMESTAMPTZ,
    power_level    INTEGER,
    power_at       TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TYPE failure_kind ADD VALUE 'pin_not_synced';
-- Only for the type's sake (the Rust enum has it): views derive `synced`, nothing stores it.
ALTER TYPE pin_state ADD VALUE 'synced';
