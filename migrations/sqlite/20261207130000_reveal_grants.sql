-- A reveal admitted on the web: its audit row committed with this grant in
-- one transaction, the value shown once, when the grant is used (a reload
-- or a second tab finds it used). Holds ciphertext and the reveal's audit
-- words only, never a value; bound to the person and their sign-in.
CREATE TABLE reveal_grants (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    generation TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    bound_to TEXT NOT NULL,
    initial_contact_id TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    stored_value TEXT NOT NULL,
    legacy BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    used_us BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX reveal_grants_expires ON reveal_grants (expires_us);
