-- The hash of every complete subtree of at least 256 leaves (a chunk, two, four, ...), so that a
-- proof reads O(log n) of them. A subtree of 2^level leaves from leaf i * 2^level is numbered
-- (2i + 1) * 2^level - 1 (its place in an in-order walk of the tree: leaves even, nodes odd).
CREATE TABLE {schema}.audit_tree_nodes (
    node bigint  NOT NULL,
    hash bytea   NOT NULL,
    CONSTRAINT audit_tree_nodes_pk PRIMARY KEY (node),
    CONSTRAINT audit_tree_nodes_hash_length CHECK (octet_length(hash) = 32)
)
