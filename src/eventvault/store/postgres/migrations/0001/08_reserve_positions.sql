-- Reserve n consecutive global positions for the calling transaction; returns the first.
--
-- Must be the transaction's first write: it assigns the transaction id (pg_current_xact_id)
-- and draws the positions while holding the position lock, so a transaction with a larger id
-- always holds larger positions. The lock is a session lock released before returning (also on
-- error): it is held for microseconds, never across a commit, so writers commit concurrently.
CREATE FUNCTION {schema}.reserve_positions(n integer) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    lock_key bigint := {schema}.position_lock_key();
    first_position bigint;
BEGIN
    IF n IS NULL OR n < 1 THEN
        RAISE EXCEPTION 'reserve_positions: n must be >= 1, not %', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_lock(lock_key);
    BEGIN
        PERFORM pg_current_xact_id();
        first_position := nextval('{schema}.events_global_position_seq');
        IF n > 1 THEN
            PERFORM setval('{schema}.events_global_position_seq', first_position + n - 1);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(lock_key);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(lock_key);
    RETURN first_position;
END
$$;
