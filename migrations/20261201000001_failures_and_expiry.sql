-- Issue 5: PINs for bookings that ended before they were needed, failures staff must see, and
-- what a PIN record needs to follow patron changes and reissues.

-- The booking ended (end + grace passed) before lockbridge made it a PIN: nothing was sent.
ALTER TYPE pin_state ADD VALUE IF NOT EXISTS 'expired';

-- Who the PIN email was last addressed to: a correction upstream sends it again.
ALTER TABLE booking_pins
    ADD COLUMN patron_name  TEXT,
    ADD COLUMN patron_email TEXT,
    -- Staff asked for a new PIN on the same guest; cleared by the run that gives it.
    ADD COLUMN reissue_requested_at TIMESTAMPTZ;

-- ── shared: failures that need a person (admin lists and retries them; notifier alerts) ──
CREATE TYPE failure_kind AS ENUM ('pin_not_issued', 'pin_not_revoked', 'email_not_sent', 'authorization');

CREATE TABLE failures (
    id            BIGSERIAL PRIMARY KEY,
    kind          failure_kind NOT NULL,
    -- NULL for failures of the whole system (the authorization, the SMTP relay).
    booking_id    TEXT,
    subject       TEXT GENERATED ALWAYS AS (coalesce(booking_id, '')) STORED,
    reason        TEXT NOT NULL,
    attempts      INT NOT NULL DEFAULT 1,
    -- The job that retries it, if one does.
    job_queue     TEXT,
    job_key       TEXT,
    since         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at   TIMESTAMPTZ
);
-- One open failure per booking and kind: what makes alerts deduplicated.
CREATE UNIQUE INDEX failures_open ON failures (kind, subject) WHERE resolved_at IS NULL;

-- An event the broker refuses (unroutable, nacked) waits out a backoff instead of holding back
-- the rows behind it.
ALTER TABLE outbox ADD COLUMN retry_at TIMESTAMPTZ;

-- ── lock-provisioner: how far it has read the sync failures locks report ───────────
CREATE TABLE remotelock_event_cursor (
    id          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    -- Events created at or after this are read again (and deduplicated by id).
    read_from   TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
