//! Embeddings: the client's request goes to the provider as it is, after a hold for its input (no output
//! is held: embeddings produce none), and is settled with the provider's `usage.prompt_tokens` at the
//! model's input price.

use lifecycle::secret::ExposeSecret;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use proto::billing::v1::{MeterClose, MeterOpen, UsageStatus};
use proto::executor::v1::RateLimits;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::chat::model_name;
use crate::error::ExecutorError;
use crate::execution::{BillingView, Call, Costs, Executor, rate_limits};
use crate::tokens;
use proto::ids::ExecutionId;

/// The most inputs one request may carry (OpenAI's own limit).
const MAX_INPUTS: usize = 2_048;

/// A validated embeddings request.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    pub call: Call,
    /// What goes to the provider: the client's body, with `model` set.
    pub body: Map<String, Value>,
}

/// A finished embeddings call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOutcome {
    pub execution_id: ExecutionId,
    /// The provider's answer as it sent it.
    pub response: String,
    pub input_tokens: u64,
    pub costs: Option<Costs>,
    pub billing: BillingView,
    /// The key's per-minute limits as they stood at open.
    pub rate_limits: Option<RateLimits>,
}

/// Reads a client's embeddings body; `model` is the default embedding model when absent.
pub fn parse(
    text: &str,
    default_model: &str,
) -> Result<(Map<String, Value>, String), ExecutorError> {
    let invalid = |message: &str| ExecutorError::InvalidRequest(message.to_string());
    let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(text) else {
        return Err(invalid("the embeddings request must be a JSON object"));
    };
    match body.get("input") {
        Some(Value::String(_)) => {}
        Some(Value::Array(inputs)) if inputs.is_empty() => {
            return Err(invalid("`input` must not be empty"));
        }
        Some(Value::Array(inputs)) if inputs.len() > MAX_INPUTS => {
            return Err(invalid("`input` has more than 2048 items"));
        }
        Some(Value::Array(_)) => {}
        _ => return Err(invalid("`input` must be a string or an array")),
    }
    let model = match body.get("model") {
        None | Some(Value::Null) => default_model.to_string(),
        Some(Value::String(model)) => model_name(model)?,
        Some(_) => return Err(invalid("`model` must be a string")),
    };
    body.insert("model".into(), Value::String(model.clone()));
    Ok((body, model))
}

/// Input tokens of an embeddings request: the tokens of its strings; token arrays count their length.
pub fn input_tokens(model: &str, input: Option<&Value>) -> u64 {
    match input {
        Some(Value::String(text)) => tokens::text_tokens(model, text),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Number(_) => 1,
                Value::Array(token_ids) => token_ids.len() as u64,
                other => input_tokens(model, Some(other)),
            })
            .sum(),
        _ => 0,
    }
}

impl Executor {
    /// Runs an embeddings call in its own tracked task (a client that goes away never skips its
    /// settlement) and waits for it.
    pub async fn embed(
        self: &Arc<Self>,
        request: EmbedRequest,
    ) -> Result<EmbedOutcome, ExecutorError> {
        let span = tracing::info_span!(
            "embeddings",
            request_id = %request.call.request_id,
            execution_id = %request.call.execution_id,
            model = %request.call.labels.model,
        );
        let (reply, result) = oneshot::channel();
        let executor = self.clone();
        self.tasks.spawn(
            async move {
                let _ = reply.send(executor.run_embed(&request).await);
            }
            .instrument(span),
        );
        result
            .await
            .map_err(|_| ExecutorError::Internal("embeddings task ended without a result".into()))?
    }

    async fn run_embed(&self, request: &EmbedRequest) -> Result<EmbedOutcome, ExecutorError> {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let call = &request.call;
        // A model no route serves is refused before anything is held.
        self.providers.check_routed(&call.labels.model)?;
        let estimated_input_tokens = input_tokens(&call.labels.model, request.body.get("input"));
        let open = MeterOpen {
            api_key: call.api_key.expose_secret().to_string(),
            execution_id: call.execution_id.to_string(),
            estimated_input_tokens,
            max_output_tokens: 0,
            input_only: true,
            labels: Some(call.labels.clone()),
            ..MeterOpen::default()
        };
        let session = self.open(open, &call.request_id).await?;
        let session = self.refuse_without_spool(call, session, started_at).await?;
        let opened = session.opened.clone();
        let answer = self
            .providers
            .embed(&call.labels.model, &request.body)
            .await;
        // The provider's count is the charge; without one, the local count of what it embedded.
        let (input_tokens, status, provider, attempts) = match &answer {
            Ok(embedded) => {
                let reported = serde_json::from_str::<Value>(embedded.answer.get())
                    .ok()
                    .and_then(|response| response.get("usage")?.get("prompt_tokens")?.as_u64());
                (
                    reported.unwrap_or(estimated_input_tokens),
                    UsageStatus::Completed,
                    embedded.provider.clone(),
                    embedded.attempts,
                )
            }
            Err(not_served) => (0, UsageStatus::Failed, String::new(), not_served.attempts),
        };
        let close = MeterClose {
            input_tokens,
            output_tokens: 0,
            status: status.into(),
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            provider,
            attempts,
            classes: None,
        };
        let charged = self.settle(call, &opened, session, close, started_at).await;
        let response = answer.map_err(ExecutorError::from)?.answer;
        Ok(EmbedOutcome {
            execution_id: call.execution_id.clone(),
            response: response.get().to_string(),
            input_tokens,
            costs: charged.costs,
            billing: charged.billing,
            rate_limits: rate_limits(&opened),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_count_their_tokens_and_token_arrays_their_length() {
        let count = |text: &str| tokens::text_tokens("mock", text);
        assert_eq!(
            input_tokens("mock", Some(&json!("Hello world"))),
            count("Hello world")
        );
        assert_eq!(
            input_tokens("mock", Some(&json!(["Hello", "brown fox"]))),
            count("Hello") + count("brown fox")
        );
        assert_eq!(input_tokens("mock", Some(&json!([1, 2, 3]))), 3);
        assert_eq!(input_tokens("mock", Some(&json!([[1, 2], [3]]))), 3);
    }

    #[test]
    fn bodies_keep_their_fields_and_get_a_model() {
        let (body, model) = parse(
            r#"{"input": "hi", "dimensions": 8, "encoding_format": "base64"}"#,
            "text-embedding-3-small",
        )
        .unwrap();
        assert_eq!(model, "text-embedding-3-small");
        assert_eq!(
            Value::Object(body),
            json!({"input": "hi", "dimensions": 8, "encoding_format": "base64", "model": "text-embedding-3-small"})
        );
        for bad in [
            "[]",
            "{}",
            r#"{"input": 5}"#,
            r#"{"input": []}"#,
            r#"{"input": "x", "model": 1}"#,
        ] {
            assert!(parse(bad, "m").is_err(), "{bad}");
        }
    }
}
