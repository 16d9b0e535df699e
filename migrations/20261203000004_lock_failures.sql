-- A failure may be about a lock rather than a booking (issue 10: a lock offline or with a low
-- battery while it has bookings soon): one open failure per lock and condition.
ALTER TYPE failure_kind ADD VALUE 'lock_offline';
ALTER TYPE failure_kind ADD VALUE 'lock_battery_low';

ALTER TABLE failures ADD COLUMN lock_id TEXT;
ALTER TABLE failures ADD CONSTRAINT failures_about_one_thing
    CHECK (booking_id IS NULL OR lock_id IS NULL);
-- The subject now names the lock too; its index goes with it and is made again.
ALTER TABLE failures DROP COLUMN subject;
ALTER TABLE failures ADD COLUMN subject TEXT
    GENERATED ALWAYS AS (coalesce(booking_id, 'lock:' || lock_id, '')) STORED;
CREATE UNIQUE INDEX failures_open ON failures (kind, subject) WHERE resolved_at IS NULL;
