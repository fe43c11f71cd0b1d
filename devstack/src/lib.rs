//! devstack: the whole platform on one machine with one command (`cargo run -p devstack`).
//!
//! billing-svc (SQLite under `./data` unless `DATABASE_URL` says otherwise), executor-svc, the gateway and,
//! when no real model is configured, the mock model run in this one process on one tokio runtime. Each
//! service is the same library its own binary runs, configured by the same flags' environment variables
//! (README.md, "Configuration"), so what works here works in the separate binaries and in docker compose.
//!
//! Where things are: [`secrets`] (the admin key and service token, generated when unset), [`stack`]
//! (start in dependency order, stop in the reverse one), [`banner`] (what is printed once it is up).

pub mod banner;
pub mod secrets;
pub mod stack;

pub use secrets::Secrets;
pub use stack::{Endpoints, Stack};
