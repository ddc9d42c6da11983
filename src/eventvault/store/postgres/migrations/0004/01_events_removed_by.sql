-- Removal (storage schema 4): a removed event keeps its row, with its positions, id, type, time
-- and hash, so every hash chain and audit proof over the log still verifies; removed_by names
-- the record of its removal (the global position of an EventsRemoved event in $removals), and
-- reads of the log leave such rows out. An erasing removal also empties data and metadata.
-- NULL for every event readers see; a column without a default is added without rewriting the
-- table. A removal updates rows but never tx_id, so the horizon readers wait for is unchanged.
ALTER TABLE {schema}.events ADD COLUMN removed_by bigint
