-- The schema registry, as the history of its changes: every version registered, every mode and
-- policy set, numbered from 1 without gaps and never updated. The registry's state is the fold
-- of these rows in change_id order (eventvault/schema/state.py). value is JSON: the schema of a
-- version, the name of a mode, or allow/refuse.
CREATE TABLE schema_history (
    change_id  INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    changed_by TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    event_type TEXT,
    version    INTEGER,
    value      TEXT    NOT NULL,
    CONSTRAINT schema_history_pk PRIMARY KEY (change_id),
    CONSTRAINT schema_history_action_ck CHECK (action IN ('register', 'mode', 'unregistered'))
)
