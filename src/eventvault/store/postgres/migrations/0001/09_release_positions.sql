-- Give back the unused tail [first_unused, last_reserved] of a reservation, when no other
-- transaction reserved after it: an append batch whose last appends failed leaves no gap.
-- Positions handed out later still go with larger transaction ids than any position used.
CREATE FUNCTION {schema}.release_positions(first_unused bigint, last_reserved bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    lock_key bigint := {schema}.position_lock_key();
    released boolean := false;
BEGIN
    PERFORM pg_advisory_lock(lock_key);
    BEGIN
        IF (SELECT last_value = last_reserved AND is_called
            FROM {schema}.events_global_position_seq) THEN
            PERFORM setval('{schema}.events_global_position_seq', first_unused, false);
            released := true;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(lock_key);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(lock_key);
    RETURN released;
END
$$;
