-- Issue 12: every audit row's sequence number is inside the chain: 1 up to
-- i64::MAX - 1 (a row at i64::MAX made the next append overflow). The
-- primary key already makes it a NOT NULL bigint.
ALTER TABLE audit_log ADD CONSTRAINT audit_log_seq_in_chain
    CHECK (seq >= 1 AND seq < 9223372036854775807);
