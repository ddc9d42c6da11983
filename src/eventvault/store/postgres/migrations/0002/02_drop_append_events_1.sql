-- Version 1's append_events is replaced by one that also takes the notification channel (03).
DROP FUNCTION {schema}.append_events(bigint, text[], bigint[], uuid[], text[], integer[], bytea[],
    bytea[], bytea[]);
