-- Issue 12: refusals of anonymous clients (no valid CSRF token, throttled
-- sign-ins) are counted here per address, action and interval, and reach the
-- audit log as one summary row each, not one row per refusal.
CREATE TABLE refusal_tally (
    client_addr TEXT NOT NULL,
    window_us BIGINT NOT NULL,
    action TEXT NOT NULL,
    refusals BIGINT NOT NULL,
    first_us BIGINT NOT NULL,
    last_us BIGINT NOT NULL,
    sample TEXT NOT NULL,
    PRIMARY KEY (client_addr, window_us, action)
);
CREATE INDEX refusal_tally_window ON refusal_tally (window_us);
