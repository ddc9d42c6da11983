-- The advisory lock key under which transaction ids and global positions are handed out
-- together: "EVLT" in the high 32 bits, the oid of this schema's sequence in the low 32 bits,
-- so stores in different schemas of one database never wait for each other.
CREATE FUNCTION {schema}.position_lock_key() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT (x'45564c54'::bigint << 32)
        | '{schema}.events_global_position_seq'::regclass::oid::bigint
$$;
