-- Issue 6: one RemoteLock rate-limit budget for the account, shared by every process.

-- ── shared: the account's rate-limit window (remotelock-api.md §2.6) ──────────────────
-- Owners (the exception to "one writer per table"): every process that calls RemoteLock's API
-- writes this row — the lock-provisioner (bookings, sync-failure polls) and the admin (staff's
-- calls) — since the limit is the account's, not a process's. Both write it only through
-- shared/src/remotelock/budget.rs: a request is taken with one conditional UPDATE, so no
-- claim is lost across processes, and RemoteLock's `X-RateLimit-*` headers set it back.
--
-- One row, keyed like remotelock_authorization (which holds at most one authorization, so
-- one account). A new authorization for another account inherits at most one window of the
-- old account's count: the lower remaining wins within a window, so it errs on the safe side.
CREATE TABLE remotelock_budget (
    id            BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    -- NULL until an answer has reported the window.
    window_limit  INT CHECK (window_limit >= 0),
    -- Requests left in the window: RemoteLock's count less what processes took since.
    remaining     INT CHECK (remaining >= 0),
    resets_at     TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((window_limit IS NULL) = (resets_at IS NULL) AND (remaining IS NULL) = (resets_at IS NULL))
);

INSERT INTO remotelock_budget DEFAULT VALUES;
