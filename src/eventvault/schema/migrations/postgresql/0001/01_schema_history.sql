-- The schema registry, as the history of its changes: every version registered, every mode and
-- policy set, numbered from 1 without gaps and never updated. The registry's state is the fold
-- of these rows in change_id order (eventvault/schema/state.py). value is JSON text: the
-- schema of a version (canonical: sorted keys), the name of a mode, or allow/refuse.
CREATE TABLE {schema}.schema_history (
    change_id  bigint  NOT NULL,
    changed_at bigint  NOT NULL,
    changed_by text    NOT NULL,
    action     text    NOT NULL,
    event_type text    COLLATE "C",
    version    integer,
    value      text    NOT NULL,
    CONSTRAINT schema_history_pk PRIMARY KEY (change_id),
    CONSTRAINT schema_history_action_ck CHECK (action IN ('register', 'mode', 'unregistered'))
)
