-- Server-side sessions. The cookie holds an opaque key; only its SHA-256 is stored.
CREATE TABLE sessions (
    key_hash TEXT PRIMARY KEY,
    user_id BIGINT,
    state TEXT NOT NULL,
    expires_us BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_us);
