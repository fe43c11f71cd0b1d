//! gateway: the public REST front of the platform. It holds no secrets and no money logic: every call is
//! forwarded over gRPC to billing-svc (accounts, keys, ledger) or executor-svc (model runs), with the
//! caller's `Authorization` and a request id, and the answers are turned into camelCase JSON with exact
//! money. `/v1/chat/completions` speaks OpenAI's dialect so OpenAI SDKs work unchanged.

pub mod auth_limit;
pub mod config;
pub mod error;
pub mod execution;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod model_api;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod timestamp;
pub mod wire;
