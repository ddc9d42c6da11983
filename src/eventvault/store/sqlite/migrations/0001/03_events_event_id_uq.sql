-- The idempotency key: an event id is stored once in the whole store.
CREATE UNIQUE INDEX events_event_id_uq ON events (event_id);
