-- pivault schema v1 (PostgreSQL). Forward-only: never edit once applied; add 0002_… instead.
-- No column holds a PI value in clear: PI lives only in fields.ciphertext (AEAD-sealed) and
-- blind_index.digest (keyed HMAC of a normalized identifier).
CREATE TABLE subjects (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    erased_at   BIGINT
);
CREATE TABLE subject_keys (
    subject_id  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (subject_id, scope)
);
CREATE TABLE fields (
    subject_id       TEXT NOT NULL,
    record           TEXT NOT NULL,
    name             TEXT NOT NULL,
    category         TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    ciphertext       BYTEA NOT NULL,
    restricted_until BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (subject_id, record, name)
);
CREATE INDEX fields_restricted ON fields (restricted_until) WHERE restricted_until IS NOT NULL;
CREATE TABLE blind_index (
    kind        TEXT NOT NULL,
    digest      BYTEA NOT NULL,
    subject_id  TEXT NOT NULL,
    PRIMARY KEY (kind, digest, subject_id)
);
CREATE INDEX blind_index_subject ON blind_index (subject_id);
CREATE TABLE consent_events (
    seq            BIGSERIAL PRIMARY KEY,
    event_ref      TEXT NOT NULL UNIQUE,
    subject_id     TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    action         TEXT NOT NULL,
    at             BIGINT NOT NULL,
    given_by       TEXT NOT NULL,
    method         TEXT NOT NULL,
    separate       BIGINT NOT NULL,
    policy_version TEXT NOT NULL,
    recorded_at    BIGINT NOT NULL
);
CREATE INDEX consent_events_subject ON consent_events (subject_id, purpose, at);
CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    roles       TEXT NOT NULL,
    purposes    TEXT NOT NULL,
    token_hash  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE TABLE policy_versions (
    version     TEXT NOT NULL,
    hash        TEXT NOT NULL,
    loaded_at   BIGINT NOT NULL,
    PRIMARY KEY (version, hash)
);
CREATE TABLE audit_head (
    id          BIGINT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL,
    touched_at  BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, touched_at)
VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea, 0);
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    at             BIGINT NOT NULL,
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
    prev_hash      BYTEA NOT NULL,
    hash           BYTEA NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject_id);
