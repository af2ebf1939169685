-- A token's own requests-per-second limit, for an integration that needs more
-- (or less) than RATE_LIMIT_PER_SEC; NULL follows the setting, 0 means none.
ALTER TABLE api_tokens ADD COLUMN rate_limit_per_sec integer CHECK (rate_limit_per_sec >= 0);
