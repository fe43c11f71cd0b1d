-- Credit grants (DESIGN §10): every credit that enters an account is a grant with a category, a priority and
-- an optional expiry; spending draws grants down in order, and the service expires their remainders. The
-- balance is what the grants have left minus the account's recorded overage (what was charged beyond every
-- grant, paid first by the next grant). Existing balances migrate to one paid grant without expiry; a
-- negative balance becomes overage.

CREATE TABLE credit_grants (
    id              TEXT PRIMARY KEY NOT NULL,
    account_id      TEXT NOT NULL REFERENCES billing_accounts (id),
    category        TEXT NOT NULL CHECK (category IN ('paid', 'promotional')),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    remaining       BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    priority        BIGINT NOT NULL,
    expires_at      BIGINT,
    created_at      BIGINT NOT NULL,
    transaction_id  BIGINT,
    expired_at      BIGINT
);
CREATE INDEX credit_grants_by_account ON credit_grants (account_id, created_at);
CREATE INDEX credit_grants_live_by_expiry ON credit_grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

ALTER TABLE billing_accounts ADD COLUMN overage BIGINT NOT NULL DEFAULT 0 CHECK (overage >= 0);
UPDATE billing_accounts SET overage = -credits_balance WHERE credits_balance < 0;
INSERT INTO credit_grants (id, account_id, category, amount, remaining, priority, expires_at, created_at)
SELECT 'migrated-' || id, id, 'paid', credits_balance, credits_balance, 100, NULL, updated_at
FROM billing_accounts WHERE credits_balance > 0;

-- Two new transaction types: `credit_grant` (a promotional grant) and `credit_expiry`.
ALTER TABLE transactions DROP CONSTRAINT transactions_type_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_type_check CHECK (type IN ('credit_purchase',
    'usage_deduction', 'credit_adjustment', 'refund', 'credit_grant', 'credit_expiry'));
