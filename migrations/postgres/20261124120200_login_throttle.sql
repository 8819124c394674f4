-- Failed sign-ins per bucket ("user:<name>" or "addr:<ip>"), shared by every replica.
CREATE TABLE login_throttle (
    bucket TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_us BIGINT NOT NULL,
    locked_until_us BIGINT NOT NULL
);
