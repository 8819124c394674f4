-- How many times a shown value's page was kept open one more showing
-- ("keep it open", bounded by decrypt::grants::MAX_EXTENSIONS).
ALTER TABLE reveal_grants ADD COLUMN extensions BIGINT NOT NULL DEFAULT 0;
