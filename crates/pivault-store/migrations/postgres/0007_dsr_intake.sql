-- Issue 11 (defect 6): a request filed without a key can be folded into an identical open one
-- and expires when never verified. Forward-only; same version number on both backends.
--
-- identity_digest: a keyed hash (HMAC-SHA256 under the blind-index key, domain-separated
-- from the blind index itself) of the normalized email or mobile the requester claimed, so
-- that the same identity filing the same request again is recognized without storing it,
-- also when it matches no account. It is kept only while the request waits for verification
-- and set to NULL when the request leaves that state or its subject is erased.
ALTER TABLE dsr_requests ADD COLUMN identity_digest BYTEA;
CREATE INDEX dsr_requests_identity ON dsr_requests (identity_digest, state);
