-- Issue 13: one durable outbox for every message, security incidents, announcements, misuse
-- locks and service cessation. Forward-only; same version number on both backends. No PI in
-- clear in any of these tables: subjects are opaque ids, addresses are looked up (and opened)
-- only when a message is delivered, and the one payload that is secret (a DSR one-time code) is
-- sealed under the outbox key (AES-256-GCM, AAD = the outbox id).
--
-- The outbox (PIPL Art. 47 erasure notices, Art. 39 cross-border notices, Art. 57 incident
-- notices, policy §7.2 DSR codes, §8.6 cessation notices). A row is written in the same
-- transaction as the change that causes it; dedup_key = kind|target|subject|cause makes it
-- exactly-once per (message kind, recipient, cause) across retries, crashes and instances.
-- state: pending (to deliver at next_at), delivered, letter (printed in a letter batch),
-- announced (no individual channel worked: covered by the public announcement), failed.
CREATE TABLE outbox (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    subject_id    TEXT,
    target        TEXT NOT NULL,
    cause         TEXT NOT NULL,
    dedup_key     TEXT NOT NULL UNIQUE,
    lang          TEXT NOT NULL,
    payload       BLOB,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'letter', 'announced', 'failed')),
    channel       TEXT,
    channel_index INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    next_at       INTEGER NOT NULL,
    lease_holder  TEXT,
    lease_until   INTEGER,
    created_at    INTEGER NOT NULL,
    done_at       INTEGER,
    last_error    TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_at);
CREATE INDEX outbox_cause ON outbox (cause, kind, state);
-- Every delivery attempt: channel, outcome code (`delivered` or a stable error code) and the
-- SMTP reply code or HTTP status when there is one. No address, no body.
CREATE TABLE outbox_attempts (
    outbox_id   TEXT NOT NULL,
    n           INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    status      INTEGER,
    PRIMARY KEY (outbox_id, n)
);
-- Security incidents (policy §8.3, §8.4; PIPL Art. 57). The free text is written by the
-- security team and must not hold PI values. scope: JSON {from, to, keys, principals,
-- categories, store}. timeline: JSON array of {at, event}.
CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    state            TEXT NOT NULL CHECK (state IN ('open', 'scoped', 'notified', 'reported', 'closed')),
    severity         TEXT NOT NULL,
    what_happened    TEXT NOT NULL,
    occurred_at      INTEGER NOT NULL,
    discovered_at    INTEGER NOT NULL,
    categories       TEXT NOT NULL,
    systems          TEXT NOT NULL,
    cause            TEXT NOT NULL,
    possible_impact  TEXT NOT NULL,
    measures_taken   TEXT NOT NULL,
    measures_planned TEXT NOT NULL,
    self_help        TEXT NOT NULL,
    remedies         TEXT NOT NULL,
    scope            TEXT,
    affected         INTEGER NOT NULL,
    opened_by        TEXT NOT NULL,
    opened_at        INTEGER NOT NULL,
    reported_at      INTEGER,
    closed_at        INTEGER,
    timeline         TEXT NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- The subjects an incident affects, computed from the audit log and the store: ids only, with
-- the affected category keys (comma-separated) and the region on record (for the counts).
CREATE TABLE incident_subjects (
    incident_id TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    categories  TEXT NOT NULL,
    region      TEXT NOT NULL,
    PRIMARY KEY (incident_id, subject_id)
);
-- Public announcements (policy §8.3: where notifying one by one is impracticable; §8.6). The
-- same contents as the individual notice, no per-person data. One per (kind, cause).
CREATE TABLE announcements (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    cause        TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    title_zh     TEXT NOT NULL,
    body_zh      TEXT NOT NULL,
    title_en     TEXT NOT NULL,
    body_en      TEXT NOT NULL,
    UNIQUE (kind, cause)
);
-- Misuse reports (policy §8.7): a security case per report, with the subject's recent access
-- history from the audit log (JSON: seq, at, actor, action, purpose, categories; no values).
CREATE TABLE security_cases (
    id          TEXT PRIMARY KEY,
    subject_id  TEXT NOT NULL,
    source      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('open', 'released')),
    opened_at   INTEGER NOT NULL,
    history     TEXT NOT NULL,
    released_by TEXT,
    released_at INTEGER
);
CREATE INDEX security_cases_subject ON security_cases (subject_id);
-- While lock_case is set, the subject's PI is released to nobody but the security role.
ALTER TABLE subjects ADD COLUMN lock_case TEXT;
-- The subject's language on record for notices (BCP 47: zh-CN, en); NULL means zh-CN.
ALTER TABLE subjects ADD COLUMN lang TEXT;
-- Service cessation (policy §8.6): one row. state: none, running (collection refused, notices
-- and deletion under way), done.
CREATE TABLE cessation (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    state        TEXT NOT NULL CHECK (state IN ('none', 'running', 'done')),
    cessation_id TEXT,
    started_by   TEXT,
    started_at   INTEGER,
    effective_at INTEGER,
    progress     TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);
INSERT INTO cessation (id, state, progress, updated_at) VALUES (1, 'none', '{}', 0);
