-- The second hop of a single sign-on is single-use: the callback records a
-- hand-off (the SHA-256 of a random id carried in the encrypted flow cookie),
-- and the first resume that presents it deletes it; a replayed cookie finds
-- nothing. Expired ones are deleted as new ones are made.
CREATE TABLE sso_handoffs (
    handoff TEXT PRIMARY KEY,
    expires_us BIGINT NOT NULL
);
