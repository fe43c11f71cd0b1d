-- The price book (BILLING.md, "Prices", "Token classes", "Volume tiers"): a price per token class, a fee per
-- call, account prices and ended rows; usage records keep their token classes, fee, provider cost and tier;
-- accounts keep their volume tiers. Every existing row keeps its meaning: a price row's new classes take
-- their defaults (cached input, cache writes and audio input at the input price, audio output at the output
-- price, no fee), records before this have no classes and no known provider cost.
ALTER TABLE pricing ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE pricing ADD COLUMN base_cached_input_price_per_1k BIGINT;
ALTER TABLE pricing ADD COLUMN base_cache_write_price_per_1k BIGINT;
ALTER TABLE pricing ADD COLUMN base_cache_write_1h_price_per_1k BIGINT;
ALTER TABLE pricing ADD COLUMN base_audio_input_price_per_1k BIGINT;
ALTER TABLE pricing ADD COLUMN base_audio_output_price_per_1k BIGINT;
ALTER TABLE pricing ADD COLUMN request_fee BIGINT NOT NULL DEFAULT 0 CHECK (request_fee >= 0);
ALTER TABLE pricing ADD COLUMN ended BIGINT NOT NULL DEFAULT 0 CHECK (ended IN (0, 1));
UPDATE pricing SET base_cached_input_price_per_1k = base_input_price_per_1k,
    base_cache_write_price_per_1k = base_input_price_per_1k,
    base_cache_write_1h_price_per_1k = base_input_price_per_1k,
    base_audio_input_price_per_1k = base_input_price_per_1k,
    base_audio_output_price_per_1k = base_output_price_per_1k;
ALTER TABLE pricing ALTER COLUMN base_cached_input_price_per_1k SET NOT NULL;
ALTER TABLE pricing ALTER COLUMN base_cache_write_price_per_1k SET NOT NULL;
ALTER TABLE pricing ALTER COLUMN base_cache_write_1h_price_per_1k SET NOT NULL;
ALTER TABLE pricing ALTER COLUMN base_audio_input_price_per_1k SET NOT NULL;
ALTER TABLE pricing ALTER COLUMN base_audio_output_price_per_1k SET NOT NULL;
ALTER TABLE pricing ADD CHECK (base_cached_input_price_per_1k >= 0 AND base_cache_write_price_per_1k >= 0
    AND base_cache_write_1h_price_per_1k >= 0 AND base_audio_input_price_per_1k >= 0
    AND base_audio_output_price_per_1k >= 0);
ALTER TABLE pricing DROP CONSTRAINT pricing_model_effective_from_key;
ALTER TABLE pricing ADD CONSTRAINT pricing_model_account_effective_from_key UNIQUE (model, account_id, effective_from);

ALTER TABLE usage_records ADD COLUMN cached_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN audio_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN audio_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN request_fee BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN provider_cost BIGINT;
ALTER TABLE usage_records ADD COLUMN discount_percent TEXT NOT NULL DEFAULT '0';

ALTER TABLE billing_accounts ADD COLUMN discount_tiers TEXT NOT NULL DEFAULT '[]';
