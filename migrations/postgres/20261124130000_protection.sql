-- Issue 6: step-up, dual control, decrypt budgets, audit shipping and checkpoints.

-- TOTP second factor. The secret is sealed with a key kept outside the
-- database (nonce + secret XOR HMAC(key, nonce)); confirmed = 0 while enrolling.
-- last_step is the newest 30-second step accepted: a code is never accepted twice.
CREATE TABLE user_totp (
    user_id BIGINT PRIMARY KEY,
    sealed TEXT NOT NULL,
    confirmed BIGINT NOT NULL DEFAULT 0,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_us BIGINT NOT NULL
);

-- Settings an admin changes at run time (e.g. totp_mandatory).
CREATE TABLE console_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_us BIGINT NOT NULL
);

-- Dual control: a decrypt request approved by another supervisor, revealed once.
CREATE TABLE decrypt_requests (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'used')),
    decided_by TEXT NOT NULL DEFAULT '',
    decided_us BIGINT NOT NULL DEFAULT 0,
    used_us BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX decrypt_requests_created ON decrypt_requests (created_us);

-- Rows committed but not yet shipped to CloudWatch Logs (written in the
-- append's own transaction; deleted once CloudWatch accepted them).
CREATE TABLE audit_outbox (
    seq BIGINT PRIMARY KEY
);

-- KMS-signed chain heads (also shipped; verify --checkpoints reads both).
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    ts_us BIGINT NOT NULL,
    signed_us BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- Decrypt budgets count one actor's recent decrypts.
CREATE INDEX audit_log_actor_action_ts ON audit_log (actor, action, ts_us);
