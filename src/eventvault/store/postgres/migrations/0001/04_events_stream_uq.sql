-- Reads of one stream, and the guard against two events at one stream position: two writers
-- that both create a new stream collide here, and the later one retries or fails.
ALTER TABLE {schema}.events
    ADD CONSTRAINT events_stream_uq UNIQUE (stream_name, stream_position);
