//! What an execution is asked: who calls and under which names its usage is recorded ([`Call`]), the chat
//! request (every execution's one request shape), and how the output travels back ([`Shape`], the proto's
//! `ResponseShape`).

use crate::chat::ChatRequest;
use lifecycle::secret::SecretString;
use proto::billing::v1::Labels;
use proto::ids::ExecutionId;

/// Who calls and under which names the usage is recorded.
#[derive(Debug, Clone)]
pub struct Call {
    pub api_key: SecretString,
    pub request_id: String,
    pub execution_id: ExecutionId,
    /// The model, workspace, session, endpoint and end user, checked ([`Labels::validate`]).
    pub labels: Labels,
}

/// How the output travels back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The first choice's text (`/execute`): deltas, or the whole output. Asks for one choice, and its
    /// output limit is bounded by the executor's maximum ([`ChatRequest::limit_text_output`]).
    Text,
    /// The provider's own JSON: chunks (or, natively from an Anthropic provider, events) as it sent them,
    /// or the assembled `chat.completion` (or Anthropic `message`).
    ChatCompletion,
}

/// A validated chat request.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub call: Call,
    pub chat: ChatRequest,
    pub shape: Shape,
}
