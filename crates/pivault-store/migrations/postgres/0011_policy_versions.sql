-- Policy §X ("Updates to this Privacy Policy"), PIPL Art. 14 para. 2: the published versions of
-- the privacy policy, as the policy file's [[policy_version]] history declares them. A row is
-- written once, when a vault first opens with a policy whose history has the version, in the
-- transaction of its audit entry (policy.version_published) and of the policy-change notices a
-- material change causes. A published version is never rewritten: a version label already
-- stored with another sha256 is refused (policy_version_rewritten). Forward-only; same version
-- number on both backends.
--
-- The table policy_versions (migration 0001) already records each policy FILE loaded (its
-- version label and the SHA-256 of the whole TOML); this one records the published versions
-- themselves, hence its own name.
--
-- published_at: the publication date, YYYY-MM-DD (the policy's own calendar date).
-- sha256: hex SHA-256 of the version's record (label, date, the text's SHA-256, the changes):
--   pivault_domain::policy::PolicyVersion::record_hash.
-- text: the published text when it is on file (NULL when it is not, e.g. 2023-06-01).
-- changes: JSON array of {summary, material, purposes, categories}.
CREATE TABLE policy_history (
    version       TEXT NOT NULL PRIMARY KEY,
    published_at  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    text          TEXT,
    changes       TEXT NOT NULL,
    stored_at     BIGINT NOT NULL
);
