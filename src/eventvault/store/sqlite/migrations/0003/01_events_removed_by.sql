-- Removal (storage schema 3): a removed event keeps its row, with its positions, id, type, time
-- and hash, so every hash chain and audit proof over the log still verifies; removed_by names
-- the record of its removal (the global position of an EventsRemoved event in $removals), and
-- reads of the log leave such rows out. An erasing removal also empties data and metadata.
-- NULL for every event readers see; adding a column with no default rewrites nothing.
ALTER TABLE events ADD COLUMN removed_by INTEGER
