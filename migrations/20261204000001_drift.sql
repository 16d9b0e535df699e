-- Drift repair (issue 10, item 4): the drift pass found RemoteLock no longer as lockbridge
-- left it for this booking (a guest deleted or deactivated by hand, its window, PIN or grant
-- changed, a cancelled booking's guest active again). The provisioning run it queued then
-- looks at RemoteLock instead of trusting the record, and clears it when done.
ALTER TABLE booking_pins ADD COLUMN drift_found_at TIMESTAMPTZ;
