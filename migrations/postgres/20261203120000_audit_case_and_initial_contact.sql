-- Issue 16: a reveal's case or ticket reference, and the contact's initial
-- contact id (reveals on a transferred leg are found by the id the call
-- started with). '' on every older row: the chain's canonical bytes cover
-- them only when either is set, so older rows verify as before.
-- (A constant default rewrites no row: the append-only trigger stays.)
ALTER TABLE audit_log ADD COLUMN case_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN initial_contact_id TEXT NOT NULL DEFAULT '';
-- The auditor's filters: contact-id prefixes are byte-order ranges
-- (COLLATE "C", whatever the database's collation), actor names are
-- compared in lower case.
CREATE INDEX audit_log_contact_prefix ON audit_log (contact_id COLLATE "C");
CREATE INDEX audit_log_initial_contact_prefix ON audit_log (initial_contact_id COLLATE "C");
CREATE INDEX audit_log_actor_lower ON audit_log (lower(actor));
