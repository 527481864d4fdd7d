-- Issue 14 (policy §IX; PIPL Art. 31): a minor's guardian signs in to the privacy center with
-- their own code, sent to the guardian's mobile on the minor's record. The session is the
-- minor's, acting as the guardian: consents given in it are `given_by = guardian`, and it
-- reaches the consents only. Forward-only; 0012 is left as it shipped.
-- acting_as: self | guardian.
ALTER TABLE center_sessions ADD COLUMN acting_as TEXT NOT NULL DEFAULT 'self'
    CHECK (acting_as IN ('self', 'guardian'));
