-- Issue 9: the master key's check value and the audit chain's format and keyed head.
-- Forward-only; same version number on both backends. Nothing here is secret or PI: the key
-- check is an HMAC under a key derived from the master key (RFC 2104/5869), the KEK ids are
-- public labels, the head MAC is an HMAC over (seq, hash).
--
-- One row (id = 1). A database from before this migration gets chain_format 'sha256-v0' (the
-- unkeyed chain) and no key check; the first open with the master key verifies that key
-- against a wrapped data key, records the check value, re-keys the chain and sets
-- chain_format 'hmac-sha256-v1'.
CREATE TABLE vault_meta (
    id            BIGINT PRIMARY KEY,
    key_check     BYTEA,
    kek_ids       TEXT,
    chain_format  TEXT NOT NULL,
    migrated_from TEXT,
    updated_at    BIGINT NOT NULL
);
INSERT INTO vault_meta (id, key_check, kek_ids, chain_format, migrated_from, updated_at)
VALUES (1, NULL, NULL, 'sha256-v0', NULL, 0);
-- HMAC over (seq, hash) of the head under the audit chain key; NULL only before the vault's
-- first open with its key.
ALTER TABLE audit_head ADD COLUMN mac BYTEA;
