-- Choosing a PIN asks whether a few drawn candidates are live on the lock, rather than
-- reading every live PIN of the lock: with this index that is a lookup per candidate, however
-- many bookings the lock has.
CREATE INDEX booking_pins_live_on_lock ON booking_pins (lock_id, pin)
    WHERE pin IS NOT NULL AND state IN ('issued', 'pending');
