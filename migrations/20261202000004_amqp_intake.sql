-- booking-intake: the AMQP intake messages applied, by source and message id (design §3.5), so
-- that a repeat of one (a redelivery, or the publisher's replay of an older message) changes
-- nothing. Claimed in the transaction that applies the message; a refused message is not kept.
CREATE TABLE intake_messages (
    source       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    booking_id   TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, message_id)
);
