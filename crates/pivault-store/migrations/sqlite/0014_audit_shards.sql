-- Issue 15: the audit log as a sharded Merkle tree (RFC 9162 §2.1) with signed checkpoints.
--
-- * audit_shards: one head per shard (entries, last keyed link, its MAC, the Merkle frontier
--   and how many entries the tree covers). Writers lock only the heads of the shards their
--   entries go to, so writers on different shards never wait for each other. Shard 0 takes
--   over the linear chain's head: the old chain is shard 0's prefix, its links and head MAC
--   unchanged. Its tree is built from the stored rows at the next open (tree_size 0 < size).
-- * audit_log.shard / .idx: the shard and the 0-based leaf index within it. Existing rows are
--   shard 0, idx = seq - 1. seq stays the entry's unique number across shards.
-- * audit_tree: every completed perfect subtree's hash, (level, idx) covering leaves
--   [idx << level, (idx + 1) << level): proofs read O(log n) rows.
-- * audit_checkpoints: the signed checkpoints (C2SP signed notes), kept.
-- audit_head stays the data writers' lock row and keeps facts_epoch / keys_epoch; its seq,
-- hash and mac columns are no longer written.
CREATE TABLE audit_shards (
    shard       INTEGER PRIMARY KEY,
    size        INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    mac         BLOB,
    tree_size   INTEGER NOT NULL DEFAULT 0,
    frontier    BLOB,
    touched_at  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_shards (shard, size, hash, mac, touched_at)
SELECT 0, seq, hash, mac, touched_at FROM audit_head WHERE id = 1;
ALTER TABLE audit_log ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN idx INTEGER;
UPDATE audit_log SET idx = seq - 1;
CREATE UNIQUE INDEX audit_log_shard_idx ON audit_log (shard, idx);
CREATE TABLE audit_tree (
    shard INTEGER NOT NULL,
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (shard, level, idx)
) WITHOUT ROWID;
CREATE TABLE audit_checkpoints (
    id    INTEGER PRIMARY KEY,
    at    INTEGER NOT NULL,
    size  INTEGER NOT NULL,
    note  TEXT NOT NULL
);
