-- Issue 16: a dual-control request keeps the case or ticket reference it was
-- made for, so the reveal it allows is recorded with it.
ALTER TABLE decrypt_requests ADD COLUMN case_ref TEXT NOT NULL DEFAULT '';
