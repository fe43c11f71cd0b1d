//! `GET /v1/models`: the provider's model list, as it sent it (executor-svc caches it for a minute). OpenAI
//! clients and chat front-ends call it first; it needs a valid key like every `/v1` route. A key with a
//! model allow-list (API_KEY_MANAGEMENT.md, "Keys") sees only the allowed models.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as billing_pb;
use proto::executor::v1 as pb;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, Service};
use crate::extract::OpenAiCallContext;
use crate::model_api::openai_error::OpenAiError;
use crate::openapi::OpenAiErrors;
use crate::routes::billing_call::billing;
use crate::state::AppState;

/// `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}, ...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub object: String,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
}

/// The models the provider serves.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    security(("bearer" = [])),
    responses((status = 200, description = "The provider's model list", body = ModelList), OpenAiErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn models(
    State(state): State<AppState>,
    OpenAiCallContext(context): OpenAiCallContext,
) -> Result<Response, OpenAiError> {
    // The key is checked by billing-svc, as on every other route (executor-svc's list needs none).
    let account = billing(
        state
            .account()
            .get_account(context.request(billing_pb::GetAccountRequest {})),
    )
    .await?;
    let allowed = account
        .policy
        .and_then(|policy| policy.allowed_models)
        .map(|list| list.models);
    let mut call = context.request(pb::ListModelsRequest {});
    call.set_timeout(state.executor_timeout);
    let list = state
        .executor()
        .list_models(call)
        .await
        .map_err(ApiError::executor)?
        .into_inner();
    let body = match allowed {
        None => list.models_json,
        Some(allowed) => only_allowed(&list.models_json, &allowed)?,
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The provider's list without the models outside `allowed`.
fn only_allowed(models_json: &str, allowed: &[String]) -> Result<String, ApiError> {
    let contract = |message: &str| ApiError::contract(Service::Executor, message);
    let mut list: Value =
        serde_json::from_str(models_json).map_err(|_| contract("model list is not JSON"))?;
    let data = list
        .get_mut("data")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| contract("model list has no `data` array"))?;
    data.retain(|model| {
        model
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| allowed.iter().any(|name| name == id))
    });
    serde_json::to_string(&list).map_err(|_| contract("model list cannot be written"))
}
