-- The transactional outbox (DESIGN §11): every event is written in the same transaction as the change that
-- causes it, in order (`seq`), and read from here by the APIs (and delivered from here to webhooks).
-- `low_balance_alerts` holds an account's `balance.low` thresholds and whether each is armed (it fires once
-- per crossing and re-arms when credit brings the balance back above it).

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, seq);

ALTER TABLE billing_accounts ADD COLUMN low_balance_alerts TEXT NOT NULL DEFAULT '[]';
