-- admin: the staff accounts of the HTML UI (issue 8). Passwords are kept as argon2 hashes
-- (PHC strings); a session is kept as the SHA-256 of its random token, so a copy of this
-- table opens no browser's session.
CREATE TYPE staff_role AS ENUM ('admin', 'staff');

CREATE TABLE staff_users (
    user_id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash  TEXT NOT NULL,
    role           staff_role NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One account per address, whatever its case.
CREATE UNIQUE INDEX staff_users_email_key ON staff_users (lower(email));

CREATE TABLE staff_sessions (
    token_sha256   BYTEA PRIMARY KEY CHECK (length(token_sha256) = 32),
    user_id        BIGINT NOT NULL REFERENCES staff_users ON DELETE CASCADE,
    -- Every form of the session carries it back (design §6).
    csrf_token     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    -- One sentence for the next page the session shows: the outcome of a form or of the
    -- OAuth round trip, which land back on the Smart Locks page.
    notice         TEXT,
    notice_is_error BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX staff_sessions_expires_at ON staff_sessions (expires_at);

-- Failed sign-in attempts, for rate limiting per account and per client address. The email
-- is kept as typed (lower-cased) whether or not an account has it, so an unknown address is
-- limited exactly like a known one.
CREATE TABLE staff_sign_in_failures (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        TEXT NOT NULL,
    client_addr  INET NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX staff_sign_in_failures_email ON staff_sign_in_failures (email, at);
CREATE INDEX staff_sign_in_failures_client ON staff_sign_in_failures (client_addr, at);

-- Every time the staff UI showed a booking's PIN, and to whom: PINs open doors, so looking one
-- up is recorded (issue 8). Kept when the user is removed, without the user.
CREATE TABLE staff_pin_viewings (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id   TEXT NOT NULL REFERENCES bookings ON DELETE CASCADE,
    pin_version  INTEGER NOT NULL,
    user_id      BIGINT REFERENCES staff_users ON DELETE SET NULL,
    email        TEXT NOT NULL,
    viewed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX staff_pin_viewings_booking ON staff_pin_viewings (booking_id, viewed_at);
