//! OpenAI's organization Usage and Costs APIs over an account's usage records (BILLING.md, "Usage and Costs
//! APIs"): `GET /v1/organization/usage/completions`, `/v1/organization/usage/embeddings` and
//! `/v1/organization/costs`, with OpenAI's query parameters and page of buckets. billing-svc computes the
//! buckets (`AccountService/GetUsageBuckets`) and decides who may read them: an owner key its own account,
//! the operator's key the account named by `accountId`. Here the query string is read (its lists repeat a
//! key, `group_by=model&group_by=api_key_id`, or use brackets, `group_by[]=model`) and the answer is written
//! in OpenAI's shape; amounts are exact JSON numbers.

use axum::Json;
use axum::extract::{RawQuery, State};
use proto::billing::v1 as pb;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::OpenAiCallContext;
use crate::model_api::openai_error::OpenAiError;
use crate::openapi::OrganizationErrors;
use crate::routes::billing_call::billing;
use crate::state::AppState;
use crate::wire::{money, required};
use money::Money;

/// The query of the three routes, as OpenAI documents it (the lists a report does not take are refused).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrganizationQuery {
    /// Start of the range (Unix seconds), inclusive.
    #[param(required = true)]
    pub start_time: Option<i64>,
    /// End of the range (Unix seconds), exclusive; default now.
    pub end_time: Option<i64>,
    /// `1m`, `1h` or `1d` (default). Buckets are aligned on the Unix epoch: a day is a UTC day.
    pub bucket_width: Option<String>,
    /// Buckets per page: `1d` default 7, at most 31 (costs 180); `1h` 24, at most 168; `1m` 60, at most 1440.
    pub limit: Option<u32>,
    /// The `next_page` of the previous page.
    pub page: Option<String>,
    /// Repeated (`group_by=model&group_by=api_key_id`, or `group_by[]=`): usage by `model`, `api_key_id`,
    /// `user_id` (the end user), `project_id` (the workspace); costs by `project_id`, `api_key_id`,
    /// `line_item`.
    pub group_by: Vec<String>,
    /// Usage only: only these models.
    pub models: Vec<String>,
    /// Only these keys.
    pub api_key_ids: Vec<String>,
    /// Usage only: only these end users.
    pub user_ids: Vec<String>,
    /// Only these workspaces.
    pub project_ids: Vec<String>,
    /// The operator's key only, and required with it: the account (or one of its keys) to read.
    #[param(rename = "accountId")]
    pub account_id: Option<String>,
}

/// One scalar parameter given twice is refused, as is a value that does not parse.
fn scalar<T: std::str::FromStr>(
    slot: &mut Option<T>,
    name: &str,
    value: &str,
) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(ApiError::InvalidRequest(format!(
            "`{name}` is given more than once"
        )));
    }
    let parsed = value
        .parse()
        .map_err(|_| ApiError::InvalidRequest(format!("`{name}`: `{value}` is not valid")))?;
    *slot = Some(parsed);
    Ok(())
}

impl OrganizationQuery {
    /// Reads a query string; parameters it does not know are ignored, as OpenAI's API does, except `batch`
    /// (no call here is a batch job, so the filter could only mislead).
    pub fn parse(raw: Option<&str>) -> Result<OrganizationQuery, ApiError> {
        let mut query = OrganizationQuery::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let name = key.strip_suffix("[]").unwrap_or(&key);
            let value = value.into_owned();
            match name {
                "start_time" => scalar(&mut query.start_time, name, &value)?,
                "end_time" => scalar(&mut query.end_time, name, &value)?,
                "bucket_width" => scalar(&mut query.bucket_width, name, &value)?,
                "limit" => scalar(&mut query.limit, name, &value)?,
                "page" => scalar(&mut query.page, name, &value)?,
                "accountId" => scalar(&mut query.account_id, name, &value)?,
                "group_by" => query.group_by.push(value),
                "models" => query.models.push(value),
                "api_key_ids" => query.api_key_ids.push(value),
                "user_ids" => query.user_ids.push(value),
                "project_ids" => query.project_ids.push(value),
                "batch" => {
                    return Err(ApiError::InvalidRequest(
                        "`batch` is not supported: there are no batch jobs".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// billing-svc's request for `report`.
    fn into_request(self, report: pb::UsageReport) -> Result<pb::UsageBucketsRequest, ApiError> {
        let seconds = |name: &str, value: i64| {
            if value < 0 {
                return Err(ApiError::InvalidRequest(format!(
                    "`{name}` must not be negative"
                )));
            }
            Ok(prost_types::Timestamp {
                seconds: value,
                nanos: 0,
            })
        };
        let start = self
            .start_time
            .ok_or_else(|| ApiError::InvalidRequest("`start_time` is required".into()))?;
        let bucket_width = match self.bucket_width.as_deref() {
            None | Some("1d") => pb::BucketWidth::Day,
            Some("1h") => pb::BucketWidth::Hour,
            Some("1m") => pb::BucketWidth::Minute,
            Some(other) => {
                return Err(ApiError::InvalidRequest(format!(
                    "`bucket_width` must be `1m`, `1h` or `1d`, not `{other}`"
                )));
            }
        };
        let group_by = self
            .group_by
            .iter()
            .map(|group| {
                let group = match group.as_str() {
                    "model" => pb::UsageGroup::Model,
                    "api_key_id" => pb::UsageGroup::ApiKey,
                    "user_id" => pb::UsageGroup::EndUser,
                    "project_id" => pb::UsageGroup::Workspace,
                    "line_item" => pb::UsageGroup::LineItem,
                    other => {
                        return Err(ApiError::InvalidRequest(format!(
                            "`group_by`: `{other}` is not supported"
                        )));
                    }
                };
                Ok(group as i32)
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(pb::UsageBucketsRequest {
            account_id: self.account_id,
            report: report as i32,
            start: Some(seconds("start_time", start)?),
            end: self
                .end_time
                .map(|end| seconds("end_time", end))
                .transpose()?,
            bucket_width: bucket_width as i32,
            limit: self.limit,
            page: self.page,
            group_by,
            models: self.models,
            api_key_ids: self.api_key_ids,
            end_user_ids: self.user_ids,
            workspace_ids: self.project_ids,
        })
    }
}

/// `{"object": "page", "data": [bucket, ...], "has_more", "next_page"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationPage {
    /// `page`.
    pub object: &'static str,
    /// Oldest first; a bucket without usage has no results.
    pub data: Vec<OrganizationBucket>,
    pub has_more: bool,
    /// Pass as `page` (with the same query) for the next buckets; null on the last page.
    pub next_page: Option<String>,
}

/// `{"object": "bucket", "start_time", "end_time", "results"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationBucket {
    /// `bucket`.
    pub object: &'static str,
    /// Unix seconds, cut to the query's range.
    pub start_time: i64,
    pub end_time: i64,
    pub results: Vec<OrganizationResult>,
}

/// One result of a bucket, the report's kind.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OrganizationResult {
    Completions(CompletionsResult),
    Embeddings(EmbeddingsResult),
    Costs(CostsResult),
}

/// The `object` of a completions result: one value, which tells the three kinds of result apart.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum CompletionsObject {
    #[serde(rename = "organization.usage.completions.result")]
    Result,
}

/// The `object` of an embeddings result.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum EmbeddingsObject {
    #[serde(rename = "organization.usage.embeddings.result")]
    Result,
}

/// The `object` of a costs result.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum CostsObject {
    #[serde(rename = "organization.costs.result")]
    Result,
}

/// Completions usage: every call but embeddings. A grouped-by field is null when not grouped by it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionsResult {
    pub object: CompletionsObject,
    /// The whole prompts, cached and audio tokens included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub input_cached_tokens: u64,
    pub input_audio_tokens: u64,
    pub output_audio_tokens: u64,
    pub num_model_requests: u64,
    /// The workspace (`x-workspace-id`).
    pub project_id: Option<String>,
    /// The end user (BILLING.md, "End users"); null also for the calls that named none.
    pub user_id: Option<String>,
    pub api_key_id: Option<String>,
    pub model: Option<String>,
    /// Always null: there are no batch jobs.
    pub batch: Option<bool>,
}

/// Embeddings usage: the calls of `/v1/embeddings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsResult {
    pub object: EmbeddingsObject,
    pub input_tokens: u64,
    pub num_model_requests: u64,
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    pub api_key_id: Option<String>,
    pub model: Option<String>,
}

/// Costs: what the calls charged.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostsResult {
    pub object: CostsObject,
    pub amount: CostAmount,
    /// `"<model>, input"`, `"<model>, output"` or `"<model>, request fee"` when grouped by `line_item`.
    pub line_item: Option<String>,
    pub project_id: Option<String>,
    pub api_key_id: Option<String>,
}

/// `{"value", "currency": "usd"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostAmount {
    /// Exactly what the ledger charged (no refunds deducted).
    pub value: Money,
    /// `usd`.
    pub currency: &'static str,
}

/// The end user as OpenAI's `user_id`: null for the calls that named none.
fn user_id(end_user_id: Option<String>) -> Option<String> {
    end_user_id.filter(|id| !id.is_empty())
}

fn result(
    report: pb::UsageReport,
    result: pb::UsageBucketResult,
) -> Result<OrganizationResult, ApiError> {
    Ok(match report {
        pb::UsageReport::Embeddings => OrganizationResult::Embeddings(EmbeddingsResult {
            object: EmbeddingsObject::Result,
            input_tokens: result.input_tokens,
            num_model_requests: result.requests,
            project_id: result.workspace_id,
            user_id: user_id(result.end_user_id),
            api_key_id: result.api_key_id,
            model: result.model,
        }),
        pb::UsageReport::Costs => OrganizationResult::Costs(CostsResult {
            object: CostsObject::Result,
            amount: CostAmount {
                value: money(Service::Billing, "amount", &result.amount)?,
                currency: "usd",
            },
            line_item: result.line_item,
            project_id: result.workspace_id,
            api_key_id: result.api_key_id,
        }),
        pb::UsageReport::Completions | pb::UsageReport::Unspecified => {
            OrganizationResult::Completions(CompletionsResult {
                object: CompletionsObject::Result,
                input_tokens: result.input_tokens,
                output_tokens: result.output_tokens,
                input_cached_tokens: result.cached_input_tokens,
                input_audio_tokens: result.audio_input_tokens,
                output_audio_tokens: result.audio_output_tokens,
                num_model_requests: result.requests,
                project_id: result.workspace_id,
                user_id: user_id(result.end_user_id),
                api_key_id: result.api_key_id,
                model: result.model,
                batch: None,
            })
        }
    })
}

/// One page of `report` for the caller.
async fn report(
    state: &AppState,
    context: OpenAiCallContext,
    raw: Option<String>,
    report: pb::UsageReport,
) -> Result<Json<OrganizationPage>, OpenAiError> {
    let request = OrganizationQuery::parse(raw.as_deref())?.into_request(report)?;
    let page = billing(
        state
            .account()
            .get_usage_buckets(context.0.request(request)),
    )
    .await?;
    let data = page
        .buckets
        .into_iter()
        .map(|bucket| {
            Ok(OrganizationBucket {
                object: "bucket",
                start_time: required(Service::Billing, "bucket.start", bucket.start)?.seconds,
                end_time: required(Service::Billing, "bucket.end", bucket.end)?.seconds,
                results: bucket
                    .results
                    .into_iter()
                    .map(|entry| result(report, entry))
                    .collect::<Result<_, ApiError>>()?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(OrganizationPage {
        object: "page",
        data,
        has_more: page.next_page.is_some(),
        next_page: page.next_page,
    }))
}

/// Completions usage (every call but embeddings) in time buckets, as OpenAI's organization Usage API.
#[utoipa::path(
    get,
    path = "/v1/organization/usage/completions",
    tag = "openai",
    security(("bearer" = [])),
    params(OrganizationQuery),
    responses((status = 200, body = OrganizationPage), OrganizationErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn usage_completions(
    State(state): State<AppState>,
    context: OpenAiCallContext,
    RawQuery(raw): RawQuery,
) -> Result<Json<OrganizationPage>, OpenAiError> {
    report(&state, context, raw, pb::UsageReport::Completions).await
}

/// Embeddings usage in time buckets, as OpenAI's organization Usage API.
#[utoipa::path(
    get,
    path = "/v1/organization/usage/embeddings",
    tag = "openai",
    security(("bearer" = [])),
    params(OrganizationQuery),
    responses((status = 200, body = OrganizationPage), OrganizationErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn usage_embeddings(
    State(state): State<AppState>,
    context: OpenAiCallContext,
    RawQuery(raw): RawQuery,
) -> Result<Json<OrganizationPage>, OpenAiError> {
    report(&state, context, raw, pb::UsageReport::Embeddings).await
}

/// What the calls charged, in time buckets, as OpenAI's organization Costs API.
#[utoipa::path(
    get,
    path = "/v1/organization/costs",
    tag = "openai",
    security(("bearer" = [])),
    params(OrganizationQuery),
    responses((status = 200, body = OrganizationPage), OrganizationErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn costs(
    State(state): State<AppState>,
    context: OpenAiCallContext,
    RawQuery(raw): RawQuery,
) -> Result<Json<OrganizationPage>, OpenAiError> {
    report(&state, context, raw, pb::UsageReport::Costs).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn lists_repeat_or_use_brackets() {
        let query = OrganizationQuery::parse(Some(
            "start_time=60&group_by=model&group_by%5B%5D=api_key_id&models[]=a&models=b&accountId=x&other=1",
        ))
        .unwrap();
        assert_eq!(query.start_time, Some(60));
        assert_eq!(query.group_by, ["model", "api_key_id"]);
        assert_eq!(query.models, ["a", "b"]);
        assert_eq!(query.account_id.as_deref(), Some("x"));
    }

    #[test]
    fn bad_queries_are_refused() {
        for raw in [
            "start_time=1&start_time=2",
            "start_time=x",
            "start_time=1&limit=-1",
            "start_time=1&batch=true",
        ] {
            assert!(OrganizationQuery::parse(Some(raw)).is_err(), "{raw}");
        }
        for raw in [
            "",
            "start_time=-1",
            "start_time=1&bucket_width=1w",
            "start_time=1&group_by=batch",
        ] {
            let query = OrganizationQuery::parse(Some(raw)).unwrap();
            assert!(
                query.into_request(pb::UsageReport::Completions).is_err(),
                "{raw}"
            );
        }
    }
}
