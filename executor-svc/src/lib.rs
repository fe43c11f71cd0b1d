//! executor-svc: runs prompts against the model providers its routes name (OpenAI-compatible APIs through
//! async-openai, Anthropic's Messages API natively), metered live against billing-svc over the `Meter` stream, with a durable spool so that no
//! settlement is ever lost.
//!
//! Where things are: [`config`] (flags and env), [`startup`] (lifecycle), [`grpc`] (wire ↔ domain),
//! [`chat`] (the chat request carried to the provider), [`execution`] (one execution, open to settle),
//! [`answer`] (the provider's chunks and the completion assembled from them), [`embeddings`],
//! [`providers`] (providers, routes and fallback), [`openai`] (one OpenAI-compatible provider), [`anthropic`]
//! (one Anthropic Messages provider, native or translated), [`upstream`] (a provider's streamed answer),
//! [`provider_error`] (a provider's error answer), [`metering`] (billing's stream), [`spool`] (settlements
//! waiting for billing), [`tokens`] (local counts), [`error`] (the one error type and its gRPC statuses).

pub mod answer;
pub mod anthropic;
pub mod chat;
pub mod config;
pub mod embeddings;
pub mod error;
pub mod execution;
pub mod grpc;
pub mod metering;
pub mod openai;
pub mod provider_error;
pub mod providers;
pub mod spool;
pub mod startup;
pub mod tokens;
pub mod upstream;

pub use config::Config;
pub use startup::{Application, StartupError};
