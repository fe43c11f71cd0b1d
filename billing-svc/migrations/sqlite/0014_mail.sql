-- Email (DESIGN §18, BILLING.md "Email"): an account's address; the mailer's one cursor in the outbox
-- (the last event done, its failed attempts at the next one, when to try again, and the lease of the
-- billing-svc process sending), starting after the events that exist now so that enabling mail never sends
-- the past; every attempt; and the weekly usage reports written (one per account and week).
ALTER TABLE billing_accounts ADD COLUMN email TEXT NOT NULL DEFAULT '';

CREATE TABLE mail_cursor (
    id               BIGINT PRIMARY KEY CHECK (id = 1),
    delivered_seq    BIGINT NOT NULL,
    failures         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    leased_until     BIGINT NOT NULL DEFAULT 0
);
INSERT INTO mail_cursor (id, delivered_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM events;

CREATE TABLE mail_attempts (
    event_id   TEXT NOT NULL,
    attempt    BIGINT NOT NULL,
    recipient  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    error      TEXT,
    succeeded  BIGINT NOT NULL CHECK (succeeded IN (0, 1))
);
CREATE INDEX mail_attempts_by_event ON mail_attempts (event_id);

CREATE TABLE usage_reports (
    account_id  TEXT NOT NULL,
    week_start  BIGINT NOT NULL,
    PRIMARY KEY (account_id, week_start)
);
