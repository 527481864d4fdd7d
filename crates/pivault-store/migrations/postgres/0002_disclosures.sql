-- Issue 4: recipient-scoped consents, the subject's chosen region, and the disclosure ledger.
-- Forward-only; same version number on both backends.
ALTER TABLE consent_events ADD COLUMN recipient TEXT;
ALTER TABLE subjects ADD COLUMN home_region TEXT;
-- Every allowed share, transfer, public disclosure and cross-border transfer (PIPL Art. 23,
-- 25, 39, 55; policy §5). Holds ids, categories and the basis — never PI values. Written in the
-- same transaction as its audit entry.
CREATE TABLE disclosures (
    id            TEXT PRIMARY KEY,
    subject_id    TEXT NOT NULL,
    action        TEXT NOT NULL,
    recipient     TEXT,
    purpose       TEXT NOT NULL,
    categories    TEXT NOT NULL,
    legal_basis   TEXT NOT NULL,
    exception     TEXT,
    reference     TEXT,
    authorized_by TEXT,
    region        TEXT,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    request_id    TEXT
);
CREATE INDEX disclosures_subject ON disclosures (subject_id, at);
CREATE INDEX disclosures_at ON disclosures (at);
