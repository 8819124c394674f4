-- Issue 15: users created by single sign-on carry the provider's subject
-- identifier (`sub`); local password accounts have none.
ALTER TABLE users ADD COLUMN sso_subject TEXT;
