//! The end-to-end suite: real binaries started as processes, talking over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod billing_auth;
mod billing_ledger;
mod billing_metering;
mod executor;
mod gateway;
