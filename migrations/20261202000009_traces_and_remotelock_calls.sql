-- The W3C trace context of the request that last changed a booking: the PIN events the
-- provisioner writes for it continue that trace (docs/operations.md, "Following a booking").
ALTER TABLE bookings ADD COLUMN traceparent TEXT;

-- Every RemoteLock request made for a booking, for `lockbridge trace`: what was asked, what
-- came back, how long it took. The path only (a query can carry a guest's name), never a body.
CREATE TABLE remotelock_calls (
    id           BIGSERIAL PRIMARY KEY,
    booking_id   TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    -- NULL when no answer came (a timeout, a refused connection).
    status       SMALLINT,
    outcome      TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX remotelock_calls_booking ON remotelock_calls (booking_id, at);
