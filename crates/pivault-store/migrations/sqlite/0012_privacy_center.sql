-- Issue 14: the privacy center. Forward-only; same version number on both backends (0011 is the
-- policy-version history). No PI in clear: a session is the SHA-256 of its random token and the
-- subject's opaque id; a visitor id is random and names nobody (it is not PI until sign-in
-- links it to an account, and then only as the link below).
--
-- Sessions of PI subjects signed in by one-time code (policy §7.2; PIPL Art. 50). One session
-- per sign-in request (UNIQUE), so a code verified once opens one session only.
CREATE TABLE center_sessions (
    token_hash  BLOB PRIMARY KEY,
    signin_id   TEXT NOT NULL UNIQUE,
    subject_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX center_sessions_subject ON center_sessions (subject_id);
-- The cookie-choice ledger (policy §III): append-only, one row per category per choice.
-- method: accept_all | reject_all | save | gpc (a Sec-GPC: 1 request with no earlier choice,
-- recorded server-side) | dismiss (the banner closed; never changes a saved choice, so it is
-- recorded only when no choice exists). subject_id is set when a signed-in visitor chooses, and
-- on sign-in for the visitor's earlier rows.
CREATE TABLE cookie_choices (
    seq         INTEGER NOT NULL,
    visitor_id  TEXT NOT NULL,
    subject_id  TEXT,
    category    TEXT NOT NULL CHECK (category IN ('necessary', 'preferences', 'analytics', 'third_party')),
    granted     INTEGER NOT NULL,
    method      TEXT NOT NULL CHECK (method IN ('accept_all', 'reject_all', 'save', 'gpc', 'dismiss')),
    policy_version TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (visitor_id, seq)
);
CREATE INDEX cookie_choices_subject ON cookie_choices (subject_id);
