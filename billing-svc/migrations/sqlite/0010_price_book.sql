-- The price book (BILLING.md, "Prices", "Token classes", "Volume tiers"): a price per token class, a fee per
-- call, account prices and ended rows; usage records keep their token classes, fee, provider cost and tier;
-- accounts keep their volume tiers. Every existing row keeps its meaning: a price row's new classes take
-- their defaults (cached input, cache writes and audio input at the input price, audio output at the output
-- price, no fee), records before this have no classes and no known provider cost.
CREATE TABLE pricing_v2 (
    id                                INTEGER PRIMARY KEY AUTOINCREMENT,
    model                             TEXT NOT NULL,
    account_id                        TEXT NOT NULL DEFAULT '',
    base_input_price_per_1k           BIGINT NOT NULL CHECK (base_input_price_per_1k >= 0),
    base_output_price_per_1k          BIGINT NOT NULL CHECK (base_output_price_per_1k >= 0),
    base_cached_input_price_per_1k    BIGINT NOT NULL CHECK (base_cached_input_price_per_1k >= 0),
    base_cache_write_price_per_1k     BIGINT NOT NULL CHECK (base_cache_write_price_per_1k >= 0),
    base_cache_write_1h_price_per_1k  BIGINT NOT NULL CHECK (base_cache_write_1h_price_per_1k >= 0),
    base_audio_input_price_per_1k     BIGINT NOT NULL CHECK (base_audio_input_price_per_1k >= 0),
    base_audio_output_price_per_1k    BIGINT NOT NULL CHECK (base_audio_output_price_per_1k >= 0),
    request_fee                       BIGINT NOT NULL DEFAULT 0 CHECK (request_fee >= 0),
    markup                            TEXT NOT NULL,
    effective_from                    BIGINT NOT NULL,
    ended                             BIGINT NOT NULL DEFAULT 0 CHECK (ended IN (0, 1)),
    created_at                        BIGINT NOT NULL,
    UNIQUE (model, account_id, effective_from)
);
INSERT INTO pricing_v2 (id, model, account_id, base_input_price_per_1k, base_output_price_per_1k,
    base_cached_input_price_per_1k, base_cache_write_price_per_1k, base_cache_write_1h_price_per_1k,
    base_audio_input_price_per_1k, base_audio_output_price_per_1k, request_fee, markup, effective_from, ended,
    created_at)
SELECT id, model, '', base_input_price_per_1k, base_output_price_per_1k,
    base_input_price_per_1k, base_input_price_per_1k, base_input_price_per_1k,
    base_input_price_per_1k, base_output_price_per_1k, 0, markup, effective_from, 0, created_at
FROM pricing;
DROP TABLE pricing;
ALTER TABLE pricing_v2 RENAME TO pricing;

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
