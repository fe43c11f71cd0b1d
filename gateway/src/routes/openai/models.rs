//! `GET /v1/models`: the provider's model list, as it sent it (executor-svc caches it for a minute). OpenAI
//! clients and chat front-ends call it first; it needs a valid key like every `/v1` route.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as billing_pb;
use proto::executor::v1 as pb;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::OpenAiCallContext;
use crate::openai_error::OpenAiError;
use crate::openapi::OpenAiErrors;
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
    state
        .account()
        .get_account(context.request(billing_pb::GetAccountRequest {}))
        .await
        .map_err(ApiError::billing)?;
    let mut call = context.request(pb::ListModelsRequest {});
    call.set_timeout(state.executor_timeout);
    let list = state
        .executor()
        .list_models(call)
        .await
        .map_err(ApiError::executor)?
        .into_inner();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        list.models_json,
    )
        .into_response())
}
