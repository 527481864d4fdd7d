-- Issue 15, cheaper appends.
--
-- 1. audit_tree is keyed by where a node ends instead of by level: pos = (idx + 1) << level,
--    the number of leaves up to and including the node's last one. The nodes one group
--    commit completes then sit side by side in the key order (one or two index pages per
--    commit) instead of on one page per level. (level, idx) still name a node; idx stays as a
--    column. Leaves (level 0) are no longer stored: a leaf's hash is its entry's (RFC 9162
--    §2.1.1), computed from audit_log by (shard, idx) when a proof needs it. That halves
--    the rows.
CREATE TABLE audit_tree_by_pos (
    shard BIGINT NOT NULL,
    pos   BIGINT NOT NULL,
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (shard, pos, level)
);
INSERT INTO audit_tree_by_pos (shard, pos, level, idx, hash)
SELECT shard, (idx + 1) << CAST(level AS INTEGER), level, idx, hash FROM audit_tree WHERE level > 0;
DROP TABLE audit_tree;
ALTER TABLE audit_tree_by_pos RENAME TO audit_tree;
ALTER INDEX audit_tree_by_pos_pkey RENAME TO audit_tree_pkey;
-- 2. Audit group commits release their shard heads' locks before their WAL flush
--    (`Store::begin_audit_group`). To wait for that flush afterwards, the writer's connection
--    commits one write of its own row here synchronously: a WAL flush covers every earlier
--    record. `slot` is the connection's backend pid, so no two writers share a row.
CREATE TABLE audit_durable (
    slot BIGINT PRIMARY KEY,
    n    BIGINT NOT NULL
);
