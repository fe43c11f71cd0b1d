-- The hash chain of ledger rows (DESIGN §19, VERIFY.md): each row's `prev_hash` and `hash`, and each account's
-- last `hash`. Rows written before this are chained by billing-svc when it starts (in id order, per account:
-- `credits::transactions::chain`), since SQL alone cannot compute SHA-256 on every backend; until then their
-- hashes are empty.
ALTER TABLE transactions ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN hash TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_accounts ADD COLUMN ledger_hash TEXT NOT NULL DEFAULT '';
