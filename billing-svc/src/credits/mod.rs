//! Credit: the lots of credit an account's balance is made of ([`grants`]), the ledger rows that move it
//! ([`transactions`]) and their hash chain ([`chain_ops`]), the rows the operator writes ([`ops`]: credits,
//! adjustments, refunds) and the expiry of grants ([`expiry`]) (BILLING.md, "Credit grants" and "The ledger").

pub mod chain_ops;
pub mod expiry;
pub mod grants;
pub mod ops;
pub mod transactions;
