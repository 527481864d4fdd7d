-- Issue 15, cheaper appends.
--
-- 1. The Merkle nodes move into the entries: audit_log.nodes holds the hashes of the perfect
--    subtrees an entry's leaf completes (levels 1, 2, …, 32 bytes each; NULL for an even
--    leaf), so node (level, idx) is in the entry of its last leaf, idx ((idx + 1) << level) - 1
--    of its shard. An append then writes no row and no index entry beyond the entry itself
--    (audit_tree cost two rows and two index entries per entry), and a proof reads its nodes
--    by (shard, idx). Leaves are not stored: a leaf's hash is its entry's (RFC 9162 §2.1.1).
--    The trees are rebuilt from the entries at the next open (tree_size 0: the store's
--    catch-up, the same as for the linear chain of before migration 0014).
ALTER TABLE audit_log ADD COLUMN nodes BYTEA;
DROP TABLE audit_tree;
UPDATE audit_shards SET tree_size = 0, frontier = NULL;
-- 2. Audit group commits release their shard heads' locks before their WAL flush
--    (`Store::begin_audit_group`). To wait for that flush afterwards, the writer's connection
--    commits one write of its own row here synchronously: a WAL flush covers every earlier
--    record. `slot` is the connection's backend pid, so no two writers share a row.
CREATE TABLE audit_durable (
    slot BIGINT PRIMARY KEY,
    n    BIGINT NOT NULL
);
