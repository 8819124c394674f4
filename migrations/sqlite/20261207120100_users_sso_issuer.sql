-- A provider's subject identifier is unique only at that provider: a user
-- created by single sign-on is the pair (issuer, subject). Rows from before
-- have no issuer yet; their next sign-in records the configured one.
ALTER TABLE users ADD COLUMN sso_issuer TEXT;
DROP INDEX users_sso_subject;
CREATE UNIQUE INDEX users_sso_issuer_subject ON users (sso_issuer, sso_subject);
