-- Issue 4: a counter bumped in the same transaction as every change to what decisions read
-- (consents, erasure, fields), so decision caches in every process and instance can tell
-- whether they are current. Forward-only; same version number on both backends.
ALTER TABLE audit_head ADD COLUMN facts_epoch BIGINT NOT NULL DEFAULT 0;
