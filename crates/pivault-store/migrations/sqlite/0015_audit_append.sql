-- Issue 15, cheaper appends.
--
-- 1. audit_tree is keyed by where a node ends instead of by level: pos = (idx + 1) << level,
--    the number of leaves up to and including the node's last one. The nodes one group
--    commit completes then sit side by side in the key order (one or two pages per commit,
--    each written to the WAL) instead of on one page per level. (level, idx) still name a
--    node; idx stays as a column.
--    Leaves (level 0) are no longer stored: a leaf's hash is its entry's (RFC 9162 §2.1.1),
--    computed from audit_log by (shard, idx) when a proof needs it. That halves the rows.
CREATE TABLE audit_tree_by_pos (
    shard INTEGER NOT NULL,
    pos   INTEGER NOT NULL,
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (shard, pos, level)
) WITHOUT ROWID;
INSERT INTO audit_tree_by_pos (shard, pos, level, idx, hash)
SELECT shard, (idx + 1) << level, level, idx, hash FROM audit_tree WHERE level > 0;
DROP TABLE audit_tree;
ALTER TABLE audit_tree_by_pos RENAME TO audit_tree;
-- 2. Kept for the same tables on both backends: PostgreSQL's audit group commits write a
--    connection's row here to wait for their WAL flush (see the PostgreSQL migration);
--    SQLite's commits are synchronous and never write it.
CREATE TABLE audit_durable (
    slot INTEGER PRIMARY KEY,
    n    INTEGER NOT NULL
);
