-- The streams that hold fields sealed with each key: forgetting a subject deletes what
-- components derived from those streams (snapshots), which may hold its fields in the clear.
CREATE TABLE audit_subject_streams (
    key_id      TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    CONSTRAINT audit_subject_streams_pk PRIMARY KEY (key_id, stream_name)
)
