-- Issue 11 (Deliver 6): key lifecycle. Forward-only; same version number on both backends.
-- Nothing here is secret or PI: key ids are public labels (a fingerprint of the key), salts are
-- public inputs to HKDF (RFC 5869) whose output also needs the master key.
--
-- API keys: an optional expiry, and the key that replaced a rotated one.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
-- A counter bumped in the same transaction as every API-key revocation or rotation and every key
-- generation change: each instance polls it and drops what it cached when it moves.
ALTER TABLE audit_head ADD COLUMN keys_epoch BIGINT NOT NULL DEFAULT 0;
-- Which blind-index key generation computed each digest (1: the key derived before rotation).
ALTER TABLE blind_index ADD COLUMN key_gen BIGINT NOT NULL DEFAULT 1;
CREATE INDEX blind_index_gen ON blind_index (key_gen, subject_id);
CREATE INDEX subject_keys_kek ON subject_keys (kek_id);
-- Key generations: kind 'kek' (wraps DEKs) or 'index' (blind index). Generation 1 is the key
-- derived from the master key as before; it gets a row at the first rotation. state:
-- 'current' (new wraps / digests), 'active' (rows still use it: loaded, and for the index
-- consulted by lookups), 'retired' (no row uses it any more; an index generation still answers
-- for the suppression list of erased accounts, whose plaintext is gone).
CREATE TABLE key_generations (
    kind        TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    key_id      TEXT NOT NULL,
    salt        BYTEA NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    PRIMARY KEY (kind, generation)
);
-- Progress of the resumable key jobs ('rewrap', 'reindex'): a cursor over the rows in key
-- order, committed with each batch, so a killed job resumes where its last batch committed.
CREATE TABLE key_jobs (
    kind           TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL,
    state          TEXT NOT NULL,
    cursor_subject TEXT NOT NULL,
    cursor_scope   TEXT NOT NULL,
    done           BIGINT NOT NULL,
    total          BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
