-- Monthly statements (DESIGN §18, BILLING.md "Statements"). A usage record keeps what its volume tier took
-- off it (records before this kept only the percent: 0 here, so statements show no discount for them). A
-- closed month's statement is frozen here, its JSON as served, the first time it is read or closed; it is
-- never written again. `ready_at` is when its "statement ready" event was written (0: not yet).
ALTER TABLE usage_records ADD COLUMN discount BIGINT NOT NULL DEFAULT 0;

CREATE TABLE statements (
    account_id  TEXT NOT NULL,
    month       TEXT NOT NULL,
    number      BIGINT NOT NULL,
    body        TEXT NOT NULL,
    closed_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, month)
);
