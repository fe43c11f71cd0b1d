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

ALTER TABLE billing_accounts ADD COLUMN name TEXT NOT NULL DEFAULT '';
UPDATE billing_accounts a SET name = k.name FROM api_keys k WHERE k.id = a.api_key_id;
ALTER TABLE billing_accounts DROP COLUMN api_key_id;
CREATE INDEX billing_accounts_by_creation ON billing_accounts (created_at, id);

-- `api_key_id` becomes optional (a credit to an account names no key); idempotency keys are per account.
ALTER TABLE transactions ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
UPDATE transactions t SET account_id = k.account_id FROM api_keys k WHERE k.id = t.api_key_id;
ALTER TABLE transactions ALTER COLUMN api_key_id DROP NOT NULL;
ALTER TABLE transactions DROP CONSTRAINT transactions_api_key_id_idempotency_key_key;
ALTER TABLE transactions ADD CONSTRAINT transactions_account_idempotency UNIQUE (account_id, idempotency_key);
DROP INDEX transactions_by_key;
DROP INDEX transactions_by_key_time;
CREATE INDEX transactions_by_account ON transactions (account_id, id);
CREATE INDEX transactions_by_account_time ON transactions (account_id, timestamp);

ALTER TABLE usage_records ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
UPDATE usage_records u SET account_id = k.account_id FROM api_keys k WHERE k.id = u.api_key_id;
-- When the execution opened (its hold's start), for requests per minute; NULL for records made before.
ALTER TABLE usage_records ADD COLUMN started_at BIGINT;
-- Reads by account replace reads by key (a member's reads add `api_key_id = …` to the account's); the key's
-- recent usage (rate limits) keeps `usage_records_by_key_time`. Each index is paid on every settlement.
DROP INDEX usage_records_by_key;
CREATE INDEX usage_records_by_account ON usage_records (account_id, id);

ALTER TABLE holds ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
UPDATE holds h SET account_id = k.account_id FROM api_keys k WHERE k.id = h.api_key_id;
