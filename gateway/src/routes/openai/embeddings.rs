//! `POST /v1/embeddings`: the client's body goes to the provider as it is (`input` as a string or an
//! array, `encoding_format`, `dimensions`, ...), after a hold for its input; the provider's answer comes
//! back as it is, billed on its input tokens at the model's input price.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use proto::executor::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::{OpenAiJson, SESSION_HEADER, WORKSPACE_HEADER};
use crate::error::ApiError;
use crate::extract::{OpenAiCallContext, end_user_id, header_text};
use crate::model_api::billing::{billing_headers, chunk_billing, rate_limit_headers};
use crate::model_api::execution_summary::{Billing, Usage};
use crate::model_api::openai_error::OpenAiError;
use crate::openapi::OpenAiErrors;
use crate::routes::execute::IDEMPOTENCY_KEY_HEADER;
use crate::state::AppState;
use proto::ending::FinishReason;

/// The endpoint recorded on usage records.
const ENDPOINT: &str = "/v1/embeddings";

/// The fields of an OpenAI embeddings request the platform reads; every field reaches the provider
/// unchanged.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// A string, an array of strings, an array of token ids, or an array of token id arrays.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Default: the executor's configured embedding model.
    pub model: Option<String>,
    /// `float` (default) or `base64`.
    pub encoding_format: Option<String>,
    pub dimensions: Option<u32>,
}

/// The provider's `{"object": "list", "data": [...], "model", "usage"}` as it sent it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsList {
    pub object: String,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    pub model: String,
    #[schema(value_type = Object)]
    pub usage: Value,
}

/// OpenAI-compatible embeddings, billed on the provider's input tokens at the model's input price (a hold
/// for the estimated input first: 402 without credit). Internal keys are recorded but never charged. The
/// answer carries the billing headers of `/v1/chat/completions`.
/// The `user` an embeddings request names, if any (the rest of the body is skipped, not kept).
fn named_end_user(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        user: Option<String>,
    }
    serde_json::from_str::<Named>(body).ok()?.user
}

#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "openai",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: a key already used is refused with 409"),
        ("x-workspace-id" = Option<String>, Header, description = "Recorded on the usage record"),
        ("x-session-id" = Option<String>, Header, description = "Recorded on the usage record"),
    ),
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "The provider's embeddings list", body = EmbeddingsList, headers(
            ("x-billing-status" = String, description = "`settled` or `pending` (standard keys)"),
            ("x-billing-cost" = String, description = "Total cost, exact decimal USD"),
            ("x-billing-balance-after" = String, description = "Balance after the charge, exact decimal USD"),
            ("x-billing-total-spent" = String, description = "Total spent after the charge, exact decimal USD"),
        )),
        OpenAiErrors,
    )
)]
#[tracing::instrument(skip_all)]
pub async fn embeddings(
    State(state): State<AppState>,
    OpenAiCallContext(context): OpenAiCallContext,
    headers: HeaderMap,
    OpenAiJson(body): OpenAiJson<Box<RawValue>>,
) -> Result<Response, OpenAiError> {
    let request = pb::EmbedRequest {
        request_json: body.get().to_string(),
        workspace_id: header_text(&headers, WORKSPACE_HEADER)?.unwrap_or_default(),
        session_id: header_text(&headers, SESSION_HEADER)?.unwrap_or_default(),
        idempotency_key: header_text(&headers, IDEMPOTENCY_KEY_HEADER)?,
        endpoint: ENDPOINT.to_string(),
        end_user_id: end_user_id(&headers, named_end_user(body.get()).as_deref())?,
    };
    let mut call = context.request(request);
    call.set_timeout(state.executor_timeout);
    let response = state
        .executor()
        .embed(call)
        .await
        .map_err(ApiError::executor)?
        .into_inner();
    let usage = Usage::try_from(response.usage)?;
    let billing = response.billing.map(Billing::try_from).transpose()?;
    let mut headers = billing_headers(chunk_billing(
        usage.total_cost,
        billing.as_ref(),
        FinishReason::Stop,
    ));
    rate_limit_headers(response.rate_limits.as_ref(), &mut headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((headers, response.response_json).into_response())
}
