-- User names are one name whatever their letter case: "SAM" is "sam". Sign-in
-- throttles and audit filters already compare names without case, so two
-- accounts that differ only in case would share a lock-out and each other's
-- rows. Existing twins must be resolved by hand first: the migration stops
-- with this message rather than choose which account to keep.
CREATE TEMP TABLE username_twins (name TEXT NOT NULL);
CREATE TEMP TRIGGER username_twins_refused BEFORE INSERT ON username_twins
BEGIN
    SELECT RAISE(ABORT, 'callvault: two or more user names differ only in letter case (list them with: SELECT username FROM users WHERE lower(username) IN (SELECT lower(username) FROM users GROUP BY 1 HAVING count(*) > 1)); rename or delete all but one of each, then run callvault migrate again');
END;
INSERT INTO username_twins
    SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1;
DROP TRIGGER username_twins_refused;
DROP TABLE username_twins;
CREATE UNIQUE INDEX users_username_nocase ON users (lower(username));
