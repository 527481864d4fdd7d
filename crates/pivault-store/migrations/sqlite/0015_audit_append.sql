-- Issue 15, cheaper appends.
--
-- 1. The Merkle nodes move into the entries: audit_log.nodes holds the hashes of the perfect
--    subtrees an entry's leaf completes (levels 1, 2, …, 32 bytes each; NULL for an even
--    leaf), so node (level, idx) is in the entry of its last leaf, idx ((idx + 1) << level) - 1
--    of its shard. An append then writes no row and no index entry beyond the entry itself,
--    and a proof reads its nodes by (shard, idx). Leaves are not stored: a leaf's hash is its
--    entry's (RFC 9162 §2.1.1). The trees are rebuilt from the entries at the next open
--    (tree_size 0: the store's catch-up, the same as for the linear chain of before 0014).
ALTER TABLE audit_log ADD COLUMN nodes BLOB;
DROP TABLE audit_tree;
UPDATE audit_shards SET tree_size = 0, frontier = NULL;
-- 2. Kept for the same tables on both backends: PostgreSQL's audit group commits write a
--    connection's row here to wait for their WAL flush (see the PostgreSQL migration);
--    SQLite's commits are synchronous and never write it.
CREATE TABLE audit_durable (
    slot INTEGER PRIMARY KEY,
    n    INTEGER NOT NULL
);
