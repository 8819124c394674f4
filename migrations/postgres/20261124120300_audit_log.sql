-- Append-only, hash-chained access log: hash = HMAC-SHA256(audit key, prev_hash || canonical row).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    ts_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts_us);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_action ON audit_log (action);
CREATE INDEX audit_log_contact ON audit_log (contact_id);
