//! billing-svc: the only writer of money. Keys, accounts, the ledger, pricing, holds and the metering
//! stream, over gRPC, on SQLite or PostgreSQL.
//!
//! Organised by concept: `accounts`, `keys`, `credits` (grants and ledger rows), `holds`, `usage`, `prices`,
//! `events` (the outbox, webhooks, alerts), `payments` and `sessions` each hold their types and rules, their
//! operations (`ops`, methods of [`ledger::Ledger`]) and their SQL (`sql`). Below them `store` runs the
//! write batches and `time` and `error` are shared by all (amounts are the `money` crate's `Money`); above
//! them `grpc` is the wire layer.

pub mod accounts;
pub mod audit_command;
pub mod backup;
pub mod config;
pub mod credits;
pub mod error;
pub mod events;
pub mod grpc;
pub mod holds;
pub mod keys;
pub mod ledger;
pub mod payments;
pub mod prices;
pub mod sessions;
pub mod startup;
pub mod statements;
pub mod store;
pub mod time;
pub mod usage;
