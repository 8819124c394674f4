-- Issue 16: a reveal's case or ticket reference, and the contact's initial
-- contact id (reveals on a transferred leg are found by the id the call
-- started with). '' on every older row: the chain's canonical bytes cover
-- them only when either is set, so older rows verify as before.
-- (ALTER TABLE ... ADD COLUMN updates no row: the append-only triggers stay.)
ALTER TABLE audit_log ADD COLUMN case_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN initial_contact_id TEXT NOT NULL DEFAULT '';
-- The auditor's filters: contact-id prefixes on either column (range scans
-- in SQLite's BINARY order), actor names in any letter case.
CREATE INDEX audit_log_initial_contact ON audit_log (initial_contact_id);
CREATE INDEX audit_log_actor_lower ON audit_log (lower(actor));
