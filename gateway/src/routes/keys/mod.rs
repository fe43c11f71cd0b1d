//! API keys: the customer's keys with their spend, and the operator's create, list, change, rotate and revoke.
//!
//! Customer routes (`/billing/…`, billing.v1.AccountService) take the customer's key; operator routes
//! (`/billing/admin/…`, billing.v1.AdminService) take the `ADMIN_API_KEY`: billing-svc checks either (401
//! unknown, 403 the wrong kind of key).
//!
//! The key's JSON shapes are in `json.rs`; a created key's (which carries its account) is here.

pub mod json;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::billing::v1 as pb;
use proto::ids::ApiKeyId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, JsonBody, PathId, QueryParams, optional_object};
use crate::openapi::{AdminErrors, CustomerErrors};
use crate::routes::accounts::Account;
use crate::routes::billing_call::billing;
use crate::routes::keys::json::{ApiKey, KeyList, KeyPolicy, KeySpendList, KeyType, Role};
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::required;

/// A newly created key: the listed fields, the plain `key` (shown this once) and its account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The plain key, `<prefix><64 lowercase hex>`. It cannot be read again.
    pub key: String,
    pub account: Account,
}

impl TryFrom<pb::CreateKeyResponse> for CreatedKey {
    type Error = ApiError;

    fn try_from(response: pb::CreateKeyResponse) -> Result<CreatedKey, ApiError> {
        Ok(CreatedKey {
            api_key: required(Service::Billing, "api_key", response.api_key)?.try_into()?,
            account: required(Service::Billing, "account", response.account)?.try_into()?,
            key: response.key,
        })
    }
}

/// The keys the caller may see: an owner every live key of its account, a member itself; each with its
/// spend today and this month (UTC).
#[utoipa::path(
    get,
    path = "/billing/keys",
    tag = "billing",
    security(("bearer" = [])),
    responses((status = 200, body = KeySpendList), CustomerErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn keys(
    State(state): State<AppState>,
    context: CallContext,
) -> Result<Json<KeySpendList>, ApiError> {
    let request = context.request(pb::ListAccountKeysRequest {});
    let response = billing(state.account().list_keys(request)).await?;
    let keys = response
        .keys
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<_, _>>()?;
    Ok(Json(KeySpendList { keys }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyBody {
    /// 1..=100 printable characters.
    pub name: String,
    pub key_type: KeyType,
    /// `[a-z0-9_]{1,32}` ending in `_`; default `tb_prod_` (standard) or `tb_internal_` (internal).
    pub prefix: Option<String>,
    /// When set (in the future), the key stops working at this time.
    pub expires_at: Option<Timestamp>,
    /// Add the key to this account (a team sharing one balance); absent = the key's own new account.
    pub account_id: Option<String>,
    /// Default: `owner` of its own account, `member` of an existing one.
    pub role: Option<Role>,
    /// The key's limits; `policy.expiresAt`, when set, wins over `expiresAt`.
    #[serde(default, deserialize_with = "optional_object")]
    pub policy: Option<KeyPolicy>,
}

/// Creates a key, with its own account or in an existing one (`accountId`); the plain `key` is in this
/// response only.
#[utoipa::path(
    post,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateKeyBody,
    responses((status = 201, body = CreatedKey), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn create_key(
    State(state): State<AppState>,
    context: CallContext,
    JsonBody(body): JsonBody<CreateKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let request = context.request(pb::CreateKeyRequest {
        name: body.name,
        key_type: body.key_type.to_wire().into(),
        prefix: body.prefix,
        expires_at: body.expires_at.map(|t| t.0),
        account_id: body.account_id,
        role: body
            .role
            .map_or(pb::Role::Unspecified, Role::to_wire)
            .into(),
        policy: body.policy.map(KeyPolicy::to_wire),
    });
    let created = billing(state.admin().create_key(request)).await?;
    Ok((StatusCode::CREATED, Json(created.try_into()?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListKeysQuery {
    /// List revoked keys too (default false).
    pub include_revoked: Option<bool>,
}

/// Lists keys (never the key nor its hash).
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "admin",
    security(("bearer" = [])),
    params(ListKeysQuery),
    responses((status = 200, body = KeyList), AdminErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn list_keys(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<ListKeysQuery>,
) -> Result<Json<KeyList>, ApiError> {
    let request = context.request(pb::ListKeysRequest {
        include_revoked: query.include_revoked.unwrap_or(false),
    });
    let response = billing(state.admin().list_keys(request)).await?;
    let keys = response
        .keys
        .into_iter()
        .map(TryInto::try_into)
        .collect::<Result<_, _>>()?;
    Ok(Json(KeyList { keys }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateKeyBody {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// Replaces the key's policy whole (its `expiresAt` included); absent keeps it.
    #[serde(default, deserialize_with = "optional_object")]
    pub policy: Option<KeyPolicy>,
}

/// Changes a key's name, role or policy; applies from the key's next call.
#[utoipa::path(
    patch,
    path = "/admin/keys/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (a UUID)")),
    request_body = UpdateKeyBody,
    responses((status = 200, body = ApiKey), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn update_key(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(body): JsonBody<UpdateKeyBody>,
) -> Result<Json<ApiKey>, ApiError> {
    let request = context.request(pb::UpdateKeyRequest {
        id: id.into(),
        name: body.name,
        role: body
            .role
            .map_or(pb::Role::Unspecified, Role::to_wire)
            .into(),
        policy: body.policy.map(KeyPolicy::to_wire),
    });
    let key = billing(state.admin().update_key(request)).await?;
    Ok(Json(key.try_into()?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKeyBody {
    /// How long the old secret keeps working, 0..=2592000 s (30 days); default 0 (refused at once).
    pub grace_period_secs: Option<u64>,
}

/// Issues a new secret for a key (same id, account, role and policy); the plain `key` is in this
/// response only.
#[utoipa::path(
    post,
    path = "/admin/keys/{id}/rotate",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (a UUID)")),
    request_body = RotateKeyBody,
    responses((status = 201, body = CreatedKey), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn rotate_key(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(body): JsonBody<RotateKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let request = context.request(pb::RotateKeyRequest {
        id: id.into(),
        grace_period_secs: body.grace_period_secs,
    });
    let created = billing(state.admin().rotate_key(request)).await?;
    Ok((StatusCode::CREATED, Json(created.try_into()?)))
}

/// Revokes a key: refused from the next call on. Revoking twice is harmless.
#[utoipa::path(
    delete,
    path = "/admin/keys/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id (a UUID)")),
    responses((status = 200, body = ApiKey), AdminErrors)
)]
#[tracing::instrument(skip_all, fields(key_id = %id))]
pub async fn revoke_key(
    State(state): State<AppState>,
    context: CallContext,
    PathId(id): PathId<ApiKeyId>,
) -> Result<Json<ApiKey>, ApiError> {
    let request = context.request(pb::RevokeKeyRequest { id: id.into() });
    let response = billing(state.admin().revoke_key(request)).await?;
    let key = response
        .api_key
        .ok_or_else(|| ApiError::contract(Service::Billing, "api_key is missing"))?;
    Ok(Json(key.try_into()?))
}
