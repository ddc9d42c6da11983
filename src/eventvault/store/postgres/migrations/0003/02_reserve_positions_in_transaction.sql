-- Reserve n consecutive global positions for a transaction that may have written before it
-- appends (a transaction beside the events: component rows, then events); returns the first
-- position and the horizon the events must be stored with (their tx_id).
--
-- reserve_positions relies on being the transaction's first write, so that its transaction id
-- is assigned under the position lock and a larger id always holds larger positions. A
-- transaction that wrote component rows first already has an id, perhaps older than those of
-- transactions that reserved positions since: stored with its own id, its events could be
-- delivered while a transaction with lower positions is still open. Its events are therefore
-- stored with a horizon instead: the newest transaction id of anything that reserved before it,
-- as seen under the position lock, so readers deliver them only once every transaction that
-- holds a lower position has finished.
--
-- Under the lock: every transaction that reserved earlier has finished (its id is then at most
-- the snapshot's xmax - 1, the newest completed id) or is still open, and then holds the
-- transaction-level stream locks of this schema (taken before reserving, held to the end), so
-- its id is found through pg_locks. pg_locks shows 32-bit ids: each is placed in the epoch
-- that puts it nearest the caller's own 64-bit id. The statement that reads them runs after
-- the lock is taken, on a snapshot of its own (a VOLATILE function under READ COMMITTED).
-- Horizons so stored never decrease along the log, and every transaction that reserves later
-- gets a larger id, so the stored ids keep rising with the positions.
CREATE FUNCTION {schema}.reserve_positions_in_transaction(
    n integer, OUT first_position bigint, OUT horizon xid8
)
LANGUAGE plpgsql
AS $$
DECLARE
    lock_key bigint := {schema}.position_lock_key();
    own bigint;
    newest bigint;
BEGIN
    IF n IS NULL OR n < 1 THEN
        RAISE EXCEPTION 'reserve_positions_in_transaction: n must be >= 1, not %', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_lock(lock_key);
    BEGIN
        own := pg_current_xact_id()::text::bigint;
        first_position := nextval('{schema}.events_global_position_seq');
        IF n > 1 THEN
            PERFORM setval('{schema}.events_global_position_seq', first_position + n - 1);
        END IF;
        SELECT greatest(
            own,
            pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1,
            max(CASE
                WHEN held.full > own + 2147483648 THEN held.full - 4294967296
                WHEN held.full < own - 2147483648 THEN held.full + 4294967296
                ELSE held.full
            END)
        )
        INTO newest
        FROM (
            SELECT ((own >> 32) << 32) + x.transactionid::text::bigint AS full
            FROM pg_locks AS s
            JOIN pg_locks AS x ON x.pid = s.pid AND x.locktype = 'transactionid'
            WHERE s.locktype = 'advisory' AND s.granted AND s.objsubid = 2
                AND s.classid::bigint = (hashtext('{schema}')::bigint & 4294967295)
        ) AS held;
        horizon := newest::text::xid8;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(lock_key);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(lock_key);
END
$$;
