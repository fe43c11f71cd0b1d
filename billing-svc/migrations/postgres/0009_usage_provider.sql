-- The provider that served each call (empty when none did) and how many providers were asked for it
-- (PROVIDERS.md). Records made before routes existed were served by the one provider there was, named
-- "default", asked once.
ALTER TABLE usage_records ADD COLUMN provider TEXT NOT NULL DEFAULT 'default';
ALTER TABLE usage_records ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
