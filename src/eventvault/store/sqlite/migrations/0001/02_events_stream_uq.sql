-- Reads of one stream, and the guard against two events at one stream position.
CREATE UNIQUE INDEX events_stream_uq ON events (stream_name, stream_position);
