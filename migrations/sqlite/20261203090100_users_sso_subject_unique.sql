-- One console user per provider subject (NULLs, the local accounts, repeat).
CREATE UNIQUE INDEX users_sso_subject ON users (sso_subject);
