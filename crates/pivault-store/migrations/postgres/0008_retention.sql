-- Issue 12: retention lifecycle, legal holds, anonymization. Forward-only; same version number
-- on both backends. Rule sources: PIPL Art. 47 (delete once the retention period ends), Art. 73
-- (anonymized information is no longer PI), CSL Art. 21 (network logs kept >= 6 months),
-- E-Commerce Law Art. 31 (transaction records kept >= 3 years), policy §4.2 (retention table).
--
-- Legal holds: while active (released_at IS NULL), nothing of the held subject, or of the held
-- category across all subjects, is deleted or anonymized by the sweep. Exactly one of
-- subject_id / category is set. No PI: reason and reference are case references, not values.
CREATE TABLE legal_holds (
    id          TEXT PRIMARY KEY,
    subject_id  TEXT,
    category    TEXT,
    reason      TEXT NOT NULL,
    reference   TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT,
    CHECK ((subject_id IS NULL) <> (category IS NULL))
);
CREATE INDEX legal_holds_active ON legal_holds (subject_id, category) WHERE released_at IS NULL;
-- One row per retention-managed record (an order, a web-log line, a ticket): the category whose
-- rule governs the whole record and the instant its clock starts. Ids and times only, no PI.
CREATE TABLE retention_items (
    subject_id  TEXT NOT NULL,
    record      TEXT NOT NULL,
    category    TEXT NOT NULL,
    event_at    BIGINT NOT NULL,
    PRIMARY KEY (subject_id, record)
);
-- The sweep's keyset walk: items of a category due by a cutoff, in (event_at, subject, record).
CREATE INDEX retention_items_due ON retention_items (category, event_at, subject_id, record);
-- Anonymized data (PIPL Art. 73): generalized values in clear, with no subject id and no key,
-- so they cannot be linked back to anyone. anonymized_at: unix seconds.
CREATE TABLE anon_weblog (
    id            BIGSERIAL PRIMARY KEY,
    hour          BIGINT NOT NULL,
    client_net    TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    status        BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    ua_family     TEXT NOT NULL,
    ua_major      BIGINT,
    anonymized_at BIGINT NOT NULL
);
CREATE TABLE anon_orders (
    id            BIGSERIAL PRIMARY KEY,
    month         TEXT NOT NULL,
    product       TEXT NOT NULL,
    amount        TEXT NOT NULL,
    anonymized_at BIGINT NOT NULL
);
-- One sweep at a time across every instance sharing the database: a single-row lease.
CREATE TABLE sweep_lease (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    until_at    BIGINT NOT NULL
);
INSERT INTO sweep_lease (id, holder, until_at) VALUES (1, NULL, 0);
-- Sweep runs and their progress. counts: a JSON object of non-PI counts.
CREATE TABLE sweep_runs (
    id          TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    dry_run     BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    counts      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX sweep_runs_started ON sweep_runs (started_at);
-- Subject-level clocks: when the account was closed, and its last activity (unix seconds).
ALTER TABLE subjects ADD COLUMN closed_at BIGINT;
ALTER TABLE subjects ADD COLUMN last_active_at BIGINT;
