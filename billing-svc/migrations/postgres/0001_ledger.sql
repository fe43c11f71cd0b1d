-- The ledger schema for PostgreSQL. Money is integer nano-dollars, times are Unix milliseconds (UTC).

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    key_type    TEXT NOT NULL CHECK (key_type IN ('standard', 'internal')),
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    expires_at  BIGINT,
    account_id  TEXT NOT NULL
);

CREATE TABLE billing_accounts (
    id               TEXT PRIMARY KEY NOT NULL,
    api_key_id       TEXT NOT NULL UNIQUE REFERENCES api_keys (id),
    credits_balance  BIGINT NOT NULL DEFAULT 0,
    held_credits     BIGINT NOT NULL DEFAULT 0 CHECK (held_credits >= 0),
    total_spent      BIGINT NOT NULL DEFAULT 0,
    daily_limit      BIGINT CHECK (daily_limit >= 0),
    monthly_limit    BIGINT CHECK (monthly_limit >= 0),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE transactions (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_key_id         TEXT NOT NULL REFERENCES api_keys (id),
    type               TEXT NOT NULL CHECK (type IN ('credit_purchase', 'usage_deduction', 'credit_adjustment', 'refund')),
    amount             BIGINT NOT NULL,
    balance_after      BIGINT NOT NULL,
    total_spent_after  BIGINT NOT NULL,
    description        TEXT NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '{}',
    timestamp          BIGINT NOT NULL,
    idempotency_key    TEXT,
    UNIQUE (api_key_id, idempotency_key)
);
CREATE INDEX transactions_by_key ON transactions (api_key_id, id);
CREATE INDEX transactions_by_key_time ON transactions (api_key_id, timestamp);

CREATE TABLE usage_records (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_key_id         TEXT NOT NULL REFERENCES api_keys (id),
    execution_id       TEXT NOT NULL UNIQUE,
    session_id         TEXT NOT NULL,
    workspace_id       TEXT NOT NULL,
    timestamp          BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    total_tokens       BIGINT NOT NULL,
    input_cost         BIGINT NOT NULL,
    output_cost        BIGINT NOT NULL,
    total_cost         BIGINT NOT NULL,
    charged            BIGINT NOT NULL,
    overage            BIGINT NOT NULL,
    model              TEXT NOT NULL,
    duration_ms        BIGINT NOT NULL,
    status             TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    key_type           TEXT NOT NULL,
    balance_after      BIGINT,
    total_spent_after  BIGINT,
    refunded_amount    BIGINT
);
CREATE INDEX usage_records_by_key ON usage_records (api_key_id, id);
CREATE INDEX usage_records_by_key_time ON usage_records (api_key_id, timestamp);

CREATE TABLE pricing (
    id                        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model                     TEXT NOT NULL,
    base_input_price_per_1k   BIGINT NOT NULL CHECK (base_input_price_per_1k >= 0),
    base_output_price_per_1k  BIGINT NOT NULL CHECK (base_output_price_per_1k >= 0),
    markup                    TEXT NOT NULL,
    effective_from            BIGINT NOT NULL,
    created_at                BIGINT NOT NULL,
    UNIQUE (model, effective_from)
);
-- The seed's default: 0.01 / 0.03 USD per 1k tokens for every model, times 1.5.
INSERT INTO pricing (model, base_input_price_per_1k, base_output_price_per_1k, markup, effective_from, created_at)
VALUES ('*', 10000000, 30000000, '1.5', 0, 0);

CREATE TABLE holds (
    id                     TEXT PRIMARY KEY NOT NULL,
    api_key_id             TEXT NOT NULL REFERENCES api_keys (id),
    execution_id           TEXT NOT NULL UNIQUE,
    amount                 BIGINT NOT NULL CHECK (amount >= 0),
    input_tokens           BIGINT NOT NULL,
    granted_output_tokens  BIGINT NOT NULL,
    max_output_tokens      BIGINT NOT NULL,
    model                  TEXT NOT NULL,
    workspace_id           TEXT NOT NULL,
    session_id             TEXT NOT NULL,
    endpoint               TEXT NOT NULL,
    started_at             BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL
);
CREATE INDEX holds_by_expiry ON holds (expires_at);
CREATE INDEX holds_by_key ON holds (api_key_id);
