-- The leaves of the audit tree (docs/audit-format.md), in chunks of 256: leaf i of the tree is
-- leaf i % 256 of chunk i / 256. Each leaf is 40 bytes, the event's global position (8 bytes,
-- big-endian) then its hash (32), in the log's order; leaf indexes have no gaps where global
-- positions do. Every chunk but the last holds 256 leaves; the last grows as the tree catches up
-- with the log. first_position and last_position find the chunk of an event.
CREATE TABLE audit_tree_leaves (
    chunk          INTEGER NOT NULL,
    leaf_count     INTEGER NOT NULL,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    leaves         BLOB    NOT NULL,
    CONSTRAINT audit_tree_leaves_pk PRIMARY KEY (chunk),
    CONSTRAINT audit_tree_leaves_count CHECK (leaf_count BETWEEN 1 AND 256),
    CONSTRAINT audit_tree_leaves_bytes CHECK (length(leaves) = 40 * leaf_count)
)
