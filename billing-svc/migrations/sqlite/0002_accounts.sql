-- Accounts become first-class (DESIGN §9): an account has a name and any number of keys; money rows, holds
-- and locks are the account's, and `api_key_id` stays on every row the key caused (attribution). A key gets
-- a role, a policy (JSON, see `store::keys::Policy`) and the hash of its previous secret while a rotation's
-- grace period runs (`rotated_at` tells a cached key from a rotated one). Existing data migrates: every account keeps its id and money, takes its key's name, and
-- its key becomes its owner.

ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'member'));
ALTER TABLE api_keys ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN previous_key_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_key_expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN rotated_at BIGINT;
CREATE UNIQUE INDEX api_keys_by_previous_hash ON api_keys (previous_key_hash);
CREATE INDEX api_keys_by_account ON api_keys (account_id, created_at);

CREATE TABLE accounts_v2 (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    credits_balance  BIGINT NOT NULL DEFAULT 0,
    held_credits     BIGINT NOT NULL DEFAULT 0 CHECK (held_credits >= 0),
    total_spent      BIGINT NOT NULL DEFAULT 0,
    daily_limit      BIGINT CHECK (daily_limit >= 0),
    monthly_limit    BIGINT CHECK (monthly_limit >= 0),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
INSERT INTO accounts_v2 (id, name, credits_balance, held_credits, total_spent, daily_limit, monthly_limit, created_at, updated_at)
SELECT a.id, k.name, a.credits_balance, a.held_credits, a.total_spent, a.daily_limit, a.monthly_limit, a.created_at, a.updated_at
FROM billing_accounts a JOIN api_keys k ON k.id = a.api_key_id;
DROP TABLE billing_accounts;
ALTER TABLE accounts_v2 RENAME TO billing_accounts;
CREATE INDEX billing_accounts_by_creation ON billing_accounts (created_at, id);

-- `api_key_id` becomes optional (a credit to an account names no key); idempotency keys are per account.
CREATE TABLE transactions_v2 (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id         TEXT NOT NULL,
    api_key_id         TEXT REFERENCES api_keys (id),
    type               TEXT NOT NULL CHECK (type IN ('credit_purchase', 'usage_deduction', 'credit_adjustment', 'refund')),
    amount             BIGINT NOT NULL,
    balance_after      BIGINT NOT NULL,
    total_spent_after  BIGINT NOT NULL,
    description        TEXT NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '{}',
    timestamp          BIGINT NOT NULL,
    idempotency_key    TEXT,
    UNIQUE (account_id, idempotency_key)
);
INSERT INTO transactions_v2 (id, account_id, api_key_id, type, amount, balance_after, total_spent_after, description, metadata, timestamp, idempotency_key)
SELECT t.id, k.account_id, t.api_key_id, t.type, t.amount, t.balance_after, t.total_spent_after, t.description, t.metadata, t.timestamp, t.idempotency_key
FROM transactions t JOIN api_keys k ON k.id = t.api_key_id;
DROP TABLE transactions;
ALTER TABLE transactions_v2 RENAME TO transactions;
CREATE INDEX transactions_by_account ON transactions (account_id, id);
CREATE INDEX transactions_by_account_time ON transactions (account_id, timestamp);

ALTER TABLE usage_records ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
UPDATE usage_records SET account_id = (SELECT k.account_id FROM api_keys k WHERE k.id = usage_records.api_key_id);
-- When the execution opened (its hold's start), for requests per minute; NULL for records made before.
ALTER TABLE usage_records ADD COLUMN started_at BIGINT;
-- Reads by account replace reads by key (a member's reads add `api_key_id = …` to the account's); the key's
-- recent usage (rate limits) keeps `usage_records_by_key_time`. Each index is paid on every settlement.
DROP INDEX usage_records_by_key;
CREATE INDEX usage_records_by_account ON usage_records (account_id, id);

ALTER TABLE holds ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
UPDATE holds SET account_id = (SELECT k.account_id FROM api_keys k WHERE k.id = holds.api_key_id);
