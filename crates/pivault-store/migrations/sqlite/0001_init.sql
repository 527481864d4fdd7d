-- pivault schema v1 (SQLite). Forward-only: never edit once applied; add 0002_… instead.
-- No column holds a PI value in clear: PI lives only in fields.ciphertext (AEAD-sealed) and
-- blind_index.digest (keyed HMAC of a normalized identifier).
CREATE TABLE subjects (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    erased_at   INTEGER
);
CREATE TABLE subject_keys (
    subject_id  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (subject_id, scope)
);
CREATE TABLE fields (
    subject_id       TEXT NOT NULL,
    record           TEXT NOT NULL,
    name             TEXT NOT NULL,
    category         TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    ciphertext       BLOB NOT NULL,
    restricted_until INTEGER,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (subject_id, record, name)
);
CREATE INDEX fields_restricted ON fields (restricted_until) WHERE restricted_until IS NOT NULL;
CREATE TABLE blind_index (
    kind        TEXT NOT NULL,
    digest      BLOB NOT NULL,
    subject_id  TEXT NOT NULL,
    PRIMARY KEY (kind, digest, subject_id)
);
CREATE INDEX blind_index_subject ON blind_index (subject_id);
CREATE TABLE consent_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_ref      TEXT NOT NULL UNIQUE,
    subject_id     TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    action         TEXT NOT NULL,
    at             INTEGER NOT NULL,
    given_by       TEXT NOT NULL,
    method         TEXT NOT NULL,
    separate       INTEGER NOT NULL,
    policy_version TEXT NOT NULL,
    recorded_at    INTEGER NOT NULL
);
CREATE INDEX consent_events_subject ON consent_events (subject_id, purpose, at);
CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    roles       TEXT NOT NULL,
    purposes    TEXT NOT NULL,
    token_hash  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE policy_versions (
    version     TEXT NOT NULL,
    hash        TEXT NOT NULL,
    loaded_at   INTEGER NOT NULL,
    PRIMARY KEY (version, hash)
);
CREATE TABLE audit_head (
    id          INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    touched_at  INTEGER NOT NULL
);
INSERT INTO audit_head (id, seq, hash, touched_at)
VALUES (1, 0, X'0000000000000000000000000000000000000000000000000000000000000000', 0);
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    subject_id     TEXT,
    purpose        TEXT,
    categories     TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    reason         TEXT,
    legal_basis    TEXT,
    policy_version TEXT NOT NULL,
    request_id     TEXT,
    detail         TEXT,
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject_id);
