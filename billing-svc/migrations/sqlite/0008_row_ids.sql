-- The write path inserts usage records and ledger rows in bulk with ids it takes in advance (see the
-- PostgreSQL migration); SQLite's INTEGER PRIMARY KEY already accepts given ids, so nothing changes here.
SELECT 1;
