-- The idempotency key: an event id is stored once in the whole store.
ALTER TABLE {schema}.events
    ADD CONSTRAINT events_event_id_uq UNIQUE (event_id);
