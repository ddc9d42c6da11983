-- Per stream: how much of it was removed, and its retention. Removals always take a prefix of
-- a stream, so removed_before (the first stream position not removed) says which of its events
-- are gone, and reads of the stream start there. max_age_us and max_count are the retention
-- that enforce_retention applies; NULL keeps every event. A row exists only for streams that
-- had a removal or metadata: appends never touch this table. Removals take the stream's lock
-- (lock_streams) before they read or write its row.
CREATE TABLE {schema}.stream_metadata (
    stream_name    text   COLLATE "C" NOT NULL,
    removed_before bigint NOT NULL DEFAULT 0,
    max_age_us     bigint,
    max_count      bigint,
    CONSTRAINT stream_metadata_pk PRIMARY KEY (stream_name),
    CONSTRAINT stream_metadata_removed_before_nonnegative CHECK (removed_before >= 0),
    CONSTRAINT stream_metadata_max_age_positive CHECK (max_age_us IS NULL OR max_age_us > 0),
    CONSTRAINT stream_metadata_max_count_positive CHECK (max_count IS NULL OR max_count > 0)
)
