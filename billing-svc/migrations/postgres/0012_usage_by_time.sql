-- OpenAI's organization Usage and Costs APIs (BILLING.md, "Usage and Costs APIs") read one account's records
-- over a time range, in buckets: this index makes each read a range scan of that account's records in the
-- range, whatever else the table holds. Paid on every settlement, like the others.
CREATE INDEX usage_records_by_account_time ON usage_records (account_id, timestamp);
