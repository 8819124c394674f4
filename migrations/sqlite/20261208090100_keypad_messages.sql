-- Amazon Connect keypad messages carry no contact or field: the contact a
-- message was first revealed under is kept here, by a keyed hash of its
-- ESDK message id (the same hash the audit row records), so a copy of the
-- message pasted under another contact is refused. Written in the
-- transaction of the reveal's audit row.
CREATE TABLE keypad_messages (
    tag TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    audit_seq BIGINT NOT NULL,
    created_us BIGINT NOT NULL
);
