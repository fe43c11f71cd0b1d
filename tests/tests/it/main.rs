//! The end-to-end suite over loopback: behaviour against the services run as libraries in this process
//! (`tests::in_process`), and what needs a process (logs, kills, restarts, signals, replicas) against the
//! real binaries (`tests::Stack`, `tests::Billing`). TESTING.md says which suite runs how.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_clis;
mod anthropic_messages;
mod anthropic_providers;
mod auto_recharge;
mod backup;
mod billing_auth;
mod billing_ledger;
mod billing_metering;
mod console;
mod docs;
mod end_users;
mod events;
mod executor;
mod gateway;
mod grants;
mod ledger_chain;
mod mail;
mod openai_fidelity;
mod openai_responses;
mod organization_usage;
mod price_book;
mod providers;
mod reliability_chaos;
mod reliability_concurrency;
mod reliability_faults;
mod reliability_sqlite;
mod security_gateway;
mod security_input;
mod security_rest_fuzz;
mod security_tls;
mod statements;
mod stripe;
mod teams;
mod webhooks;
