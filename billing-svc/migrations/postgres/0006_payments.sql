-- Payments (DESIGN §12) and key expiry notices (§11).
-- `stripe_customer_id`: the Stripe customer of the account's saved card (from its last Checkout payment).
-- `auto_recharge`: the account's auto-recharge settings and state (JSON, see billing-svc/src/auto_recharge.rs),
-- written with the money columns in the transaction of the settlement that may start a recharge.
ALTER TABLE billing_accounts ADD COLUMN stripe_customer_id TEXT;
ALTER TABLE billing_accounts ADD COLUMN auto_recharge TEXT;

-- Which `key.expiring` notices a key has had: 0 none, 1 the 7-day one, 2 the 1-day one.
ALTER TABLE api_keys ADD COLUMN expiry_notices BIGINT NOT NULL DEFAULT 0;

-- One row per auto-recharge: written by the settlement that takes available credit below the threshold (its
-- id is the id of that settlement's `balance.low` event, and the Idempotency-Key of the PaymentIntent), then
-- `pending` until billing-svc has asked Stripe (`lease_until` lets one process at a time do it), `charged`
-- until Stripe's webhook says how it ended, `succeeded` or `failed`.
CREATE TABLE auto_recharges (
    id                 TEXT PRIMARY KEY NOT NULL,
    account_id         TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    status             TEXT NOT NULL,
    payment_intent_id  TEXT,
    error              TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    lease_until        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX auto_recharges_by_status ON auto_recharges (status, lease_until);
CREATE INDEX auto_recharges_by_account ON auto_recharges (account_id, created_at);
