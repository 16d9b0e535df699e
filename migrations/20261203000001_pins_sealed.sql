-- PINs rest sealed (AES-256-GCM under pins.encryption_key, crates/sealing), beside a keyed
-- digest that finds a PIN already live on a lock without opening every row. The plaintext
-- column stays only for rows written before this: the lock-provisioner seals them as it
-- starts and empties it (services/lock-provisioner/src/store.rs, `seal_plaintext_pins`).
ALTER TABLE booking_pins ADD COLUMN pin_sealed BYTEA, ADD COLUMN pin_digest BYTEA;
ALTER TABLE booking_pins ADD CONSTRAINT booking_pins_sealed_with_digest
    CHECK ((pin_sealed IS NULL) = (pin_digest IS NULL));

DROP INDEX booking_pins_live_on_lock;
CREATE INDEX booking_pins_live_on_lock ON booking_pins (lock_id, pin_digest)
    WHERE pin_digest IS NOT NULL AND state IN ('issued', 'pending');

-- What the provisioner still has to seal as it starts: nothing, once it has, found at once.
CREATE INDEX booking_pins_in_clear ON booking_pins (booking_id) WHERE pin IS NOT NULL;
