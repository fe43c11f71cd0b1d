//! The one harness of the tests and the bench (dev-only; no service depends on it): the service binaries
//! run as child processes ([`process`]), throwaway PostgreSQL clusters ([`postgres`]), a fresh database per
//! test or run with the ledger audit ([`database`]), and a client of billing's `Meter` stream as
//! executor-svc drives it ([`meter`], with the authorization it needs in [`grpc`]).
//!
//! Every fallible call returns `anyhow::Result` with context: the bench reports the error and fails the
//! run, a test `.expect()`s it. A gRPC status a service answered stays in the chain
//! (`error.downcast_ref::<tonic::Status>()`), so a test can assert on a refusal.

pub mod database;
pub mod grpc;
pub mod meter;
pub mod postgres;
pub mod process;

pub use database::{Backend, Database};
pub use meter::MeterSession;
pub use postgres::Cluster;
pub use process::{KeptLogs, Launcher, ServiceProcess, kilobytes_field};
