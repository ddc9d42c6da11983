-- The registry row of a stream is written by the statement that stores the stream's first
-- event, inside SQLite, so an append is one INSERT statement however many streams it creates.
CREATE TRIGGER events_new_stream AFTER INSERT ON events
WHEN NEW.stream_position = 0
BEGIN
    INSERT INTO streams (stream_name, first_global_position)
    VALUES (NEW.stream_name, NEW.global_position);
END
