-- Write a batch of events in one statement: the fast path of an append, one round trip.
--
-- The client planned the batch against stream heads it remembers from its own earlier commits
-- (or against "no stream yet" for NO_STREAM appends) and computed every stream position and
-- hash. Nothing is checked here: if a remembered head is stale, another writer holds that
-- stream position and the insert fails on events_stream_uq; the client then takes the careful
-- path, which reads the heads under the same stream locks. The stream locks come first, then
-- reserve_positions, the first write, as it must be; global positions are the reserved block,
-- in the order of the arrays. Returns the first one.
--
-- With a channel, it also notifies it, the payload being the global position of the batch's
-- last event: the notification goes out when the events commit (ADR 0004, "NOTIFY").
CREATE FUNCTION {schema}.append_events(
    recorded_at bigint,
    stream_names text[],
    stream_positions bigint[],
    event_ids uuid[],
    event_types text[],
    schema_versions integer[],
    datas bytea[],
    metadatas bytea[],
    hashes bytea[],
    channel text
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    first_position bigint;
BEGIN
    -- lock_streams, inlined: the same locks in the same order.
    PERFORM pg_advisory_xact_lock(hashtext('{schema}'), keys.key)
    FROM (SELECT DISTINCT hashtext(n) AS key FROM unnest(stream_names) AS n ORDER BY 1) AS keys;
    first_position := {schema}.reserve_positions(cardinality(stream_names));
    INSERT INTO {schema}.events (stream_name, stream_position, global_position, event_id,
        event_type, schema_version, data, metadata, recorded_at, hash)
    SELECT u.n, u.sp, first_position + u.k - 1, u.id, u.t, u.v, u.d, u.m,
        recorded_at, u.h
    FROM unnest(stream_names, stream_positions, event_ids, event_types, schema_versions, datas,
        metadatas, hashes) WITH ORDINALITY AS u(n, sp, id, t, v, d, m, h, k);
    -- Each stream's new head is its last event in the batch.
    INSERT INTO {schema}.streams (stream_name, version, last_global_position, last_hash)
    SELECT DISTINCT ON (u.n) u.n, u.sp, first_position + u.k - 1, u.h
    FROM unnest(stream_names, stream_positions, hashes) WITH ORDINALITY AS u(n, sp, h, k)
    ORDER BY u.n, u.sp DESC
    ON CONFLICT ON CONSTRAINT streams_pk DO UPDATE SET version = EXCLUDED.version,
        last_global_position = EXCLUDED.last_global_position, last_hash = EXCLUDED.last_hash;
    IF channel IS NOT NULL THEN
        PERFORM pg_notify(channel, (first_position + cardinality(stream_names) - 1)::text);
    END IF;
    RETURN first_position;
END
$$;
