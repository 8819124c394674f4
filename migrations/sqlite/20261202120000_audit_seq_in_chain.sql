-- Issue 12: every audit row has an integer sequence number inside the chain.
-- `seq BIGINT PRIMARY KEY` accepted NULL, REAL and TEXT values and i64::MAX
-- (outside every range scan, and a head that makes the next append wrap).
-- SQLite cannot add a constraint in place: the table is rebuilt with `seq` as
-- the rowid (an integer, never NULL) and a CHECK that keeps it in 1..i64::MAX-1.
-- A forged TEXT or REAL row makes this migration fail rather than vanish (and
-- `callvault audit verify` on the old schema names it); a NULL one is given
-- the next number, where verification then fails on its hash.
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
CREATE TABLE audit_log_chain (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1 AND seq < 9223372036854775807),
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
INSERT INTO audit_log_chain (seq, ts_us, actor, role, action, contact_id, field, reason, outcome,
        client_addr, user_agent, request_id, detail, prev_hash, hash)
    SELECT seq, ts_us, actor, role, action, contact_id, field, reason, outcome,
        client_addr, user_agent, request_id, detail, prev_hash, hash
    FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_chain RENAME TO audit_log;
CREATE INDEX audit_log_ts ON audit_log (ts_us);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_action ON audit_log (action);
CREATE INDEX audit_log_contact ON audit_log (contact_id);
CREATE INDEX audit_log_actor_action_ts ON audit_log (actor, action, ts_us);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
