//! billing-svc: the only writer of money. Keys, accounts, the ledger, pricing, holds and the metering
//! stream, over gRPC, on SQLite or PostgreSQL.

pub mod alerts;
pub mod audit_command;
pub mod auto_recharge;
pub mod backup;
pub mod config;
pub mod error;
pub mod grants;
pub mod grpc;
pub mod keys;
pub mod ledger;
pub mod money;
pub mod policy;
pub mod pricing;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod stripe;
pub mod time;
pub mod webhooks;
