-- Issue 5: data subject requests (PIPL Art. 44-50; policy §VII, §XI). Forward-only; same
-- version number on both backends. No column holds a PI value in clear: request parameters
-- that carry PI (corrections) and access packages are sealed under the subject's DEK, so
-- crypto-shredding the subject also shreds them.
CREATE TABLE dsr_requests (
    id              TEXT PRIMARY KEY,
    subject_id      TEXT,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT,
    failed_step     TEXT,
    channel         TEXT NOT NULL,
    jurisdiction    TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    extended_due_at INTEGER,
    duplicate_of    TEXT,
    token_hash      BLOB NOT NULL,
    steps_done      TEXT NOT NULL,
    step_results    TEXT NOT NULL,
    params          TEXT NOT NULL,
    sealed_params   BLOB,
    result_key_id   TEXT,
    result          BLOB,
    receipt         TEXT,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER
);
CREATE INDEX dsr_requests_open ON dsr_requests (state, due_at);
CREATE INDEX dsr_requests_subject ON dsr_requests (subject_id, kind, received_at);
-- One live one-time code per request: only its keyed digest is kept (policy §7.2).
CREATE TABLE dsr_codes (
    request_id    TEXT PRIMARY KEY,
    digest        BLOB NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL,
    sends         INTEGER NOT NULL,
    sent_at       INTEGER NOT NULL
);
-- Recipients told to delete what they received (GB/T 35273-2020 §8.3 c; PIPL Art. 47):
-- the erasure's counterpart of the disclosure ledger.
CREATE TABLE erasure_notices (
    request_id  TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    categories  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (request_id, recipient)
);
