-- Issue 16: the IANA time zone a user reads the audit pages in (NULL: UTC).
ALTER TABLE users ADD COLUMN time_zone TEXT;
