//! Command-line flags with environment fallbacks.

use std::net::SocketAddr;

/// How the mock model runs. Every flag has an environment variable of the same meaning.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "mock-model",
    version,
    about = "A deterministic OpenAI-compatible chat model"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the bound address is logged as `listening`).
    #[arg(long, env = "MOCK_MODEL_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Output tokens of a completion when neither the request nor the model name asks for another length.
    #[arg(long, env = "MOCK_MODEL_OUTPUT_TOKENS", default_value_t = 16)]
    pub output_tokens: u32,

    /// Delay before each output token of a streamed completion, in milliseconds (0 = as fast as possible).
    #[arg(long, env = "MOCK_MODEL_TOKEN_LATENCY_MS", default_value_t = 0)]
    pub token_latency_ms: u64,
}
