-- The customer's own end user each call was made for (DESIGN §18, BILLING.md "End users"): the request's
-- `user`, `metadata.user_id` or `x-end-user-id`. Records and holds made before it was kept name none.
ALTER TABLE usage_records ADD COLUMN end_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN end_user_id TEXT NOT NULL DEFAULT '';
CREATE INDEX usage_records_by_end_user ON usage_records (account_id, end_user_id, timestamp);
