//! billing_ledger tests.
