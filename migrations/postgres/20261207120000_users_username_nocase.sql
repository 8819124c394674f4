-- User names are one name whatever their letter case: "SAM" is "sam". Sign-in
-- throttles and audit filters already compare names without case, so two
-- accounts that differ only in case would share a lock-out and each other's
-- rows. Existing twins must be resolved by hand first: the migration stops
-- with this message (naming them) rather than choose which account to keep.
DO $$
DECLARE
    twins TEXT;
BEGIN
    SELECT string_agg(names, '; ') INTO twins FROM (
        SELECT string_agg(username, ' / ' ORDER BY username) AS names
        FROM users GROUP BY lower(username) HAVING count(*) > 1
    ) t;
    IF twins IS NOT NULL THEN
        RAISE EXCEPTION 'callvault: user names that differ only in letter case: %; rename or delete all but one of each, then run callvault migrate again', twins;
    END IF;
END
$$;
CREATE UNIQUE INDEX users_username_nocase ON users (lower(username));
