-- Webhook endpoints and the record of every delivery attempt (DESIGN §11). An endpoint belongs to an account
-- (its events) or to the operator (`account_id` NULL: every account's events). Delivery follows the outbox
-- in order: `delivered_seq` is the last event done for the endpoint (delivered, or not of its types); a
-- failing event is retried at `next_attempt_at` until the schedule ends, then the endpoint is disabled.
-- `lease_until` lets one billing-svc process at a time deliver to an endpoint.
CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY NOT NULL,
    account_id       TEXT,
    url              TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    secret           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    disabled_at      BIGINT,
    deleted_at       BIGINT,
    delivered_seq    BIGINT NOT NULL,
    failures         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    lease_until      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    status       BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    succeeded    BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_event ON webhook_attempts (event_id, id);
