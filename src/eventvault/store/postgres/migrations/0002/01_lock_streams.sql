-- Serialize the writers of each stream from before they reserve global positions until they
-- commit, so that a stream's events take global positions in their stream order (version 1
-- reserved positions first and locked the stream rows after, so two writers of one stream could
-- commit its next events in the opposite global order; and its fast path locked the stream row
-- after inserting while the careful path locked it before, so the two could deadlock).
--
-- Transaction-level advisory locks, one per stream (a 32-bit hash of its name, in the lock
-- space of this schema), taken in key order so that batches of several streams cannot
-- deadlock. Unlike row locks they do not give the transaction an id: reserve_positions must
-- still be the first thing to do that (ADR 0004). Two names with the same hash only serialize
-- their writers more than needed.
CREATE FUNCTION {schema}.lock_streams(stream_names text[]) RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_advisory_xact_lock(hashtext('{schema}'), keys.key)
    FROM (SELECT DISTINCT hashtext(n) AS key FROM unnest(stream_names) AS n ORDER BY 1) AS keys;
$$;
