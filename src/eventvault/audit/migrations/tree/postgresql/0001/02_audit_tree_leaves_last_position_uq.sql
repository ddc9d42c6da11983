-- The chunk that holds an event: the first whose last position is at or after the event's.
CREATE UNIQUE INDEX audit_tree_leaves_last_position_uq ON {schema}.audit_tree_leaves (last_position)
