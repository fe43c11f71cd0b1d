//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` attributes by the same
//! `OpenApiRouter` that builds the axum router (a route cannot be served undocumented), plus the route
//! list clients and tests compare it with, and the error responses shared by the operations.

use std::collections::BTreeMap;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::error::ErrorBody;
use crate::model_api::anthropic_error::AnthropicErrorBody;
use crate::model_api::openai_error::OpenAiErrorBody;

/// Every route the gateway serves, `(method, path)`: the contract `/openapi.json` is checked against.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/execute"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("GET", "/v1/models"),
    ("GET", "/v1/organization/usage/completions"),
    ("GET", "/v1/organization/usage/embeddings"),
    ("GET", "/v1/organization/costs"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("GET", "/billing/account"),
    ("GET", "/billing/stats"),
    ("GET", "/billing/usage"),
    ("GET", "/billing/transactions"),
    ("GET", "/billing/workspaces"),
    ("GET", "/billing/keys"),
    ("GET", "/billing/grants"),
    ("GET", "/billing/prices"),
    ("GET", "/billing/events"),
    ("GET", "/billing/ledger/head"),
    ("GET", "/billing/statements"),
    ("GET", "/billing/statements/{month}"),
    ("PUT", "/billing/alerts"),
    ("POST", "/billing/checkout"),
    ("PUT", "/billing/auto-recharge"),
    ("GET", "/billing/auto-recharge"),
    ("GET", "/admin/events"),
    ("POST", "/admin/events/{id}/redeliver"),
    ("POST", "/admin/webhooks"),
    ("GET", "/admin/webhooks"),
    ("DELETE", "/admin/webhooks/{id}"),
    ("POST", "/billing/webhooks"),
    ("GET", "/billing/webhooks"),
    ("DELETE", "/billing/webhooks/{id}"),
    ("POST", "/admin/accounts"),
    ("GET", "/admin/accounts"),
    ("GET", "/admin/accounts/{accountId}"),
    ("PATCH", "/admin/accounts/{accountId}"),
    ("GET", "/admin/accounts/{accountId}/usage"),
    ("GET", "/admin/accounts/{accountId}/transactions"),
    ("GET", "/admin/stats"),
    ("POST", "/admin/keys"),
    ("GET", "/admin/keys"),
    ("DELETE", "/admin/keys/{id}"),
    ("PATCH", "/admin/keys/{id}"),
    ("POST", "/admin/keys/{id}/rotate"),
    ("GET", "/admin/prices"),
    ("POST", "/admin/prices"),
    ("DELETE", "/admin/prices/{model}"),
    ("POST", "/billing/admin/{id}/credits"),
    ("POST", "/billing/admin/{id}/adjustments"),
    ("POST", "/billing/admin/{id}/refunds"),
    ("POST", "/billing/admin/{id}/limits"),
    ("GET", "/billing/admin/{id}/stats"),
    ("GET", "/billing/admin/{id}/grants"),
    ("PUT", "/billing/admin/{id}/alerts"),
    ("POST", "/webhooks/stripe"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "LLM billing gateway",
        description = "Pay-per-token LLM API. Authenticate with `Authorization: Bearer <key>`: a customer key \
            (`tb_...`) for execution and `/billing/*` routes, the operator's ADMIN_API_KEY for `/admin/*` and \
            `/billing/admin/*`. Money is written as exact JSON numbers of US dollars (at most 9 decimals). \
            Every response carries `x-request-id` (the client's, or a new UUID). Errors are \
            `{\"error\", \"code\", \"details\"}` except under `/v1`, which uses OpenAI's error shape.",
    ),
    components(schemas(ErrorBody, OpenAiErrorBody, AnthropicErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "execution", description = "Run prompts, billed per token"),
        (name = "openai", description = "OpenAI-compatible endpoint"),
        (name = "anthropic", description = "Anthropic-compatible endpoint (Messages API)"),
        (name = "billing", description = "The caller's own account"),
        (name = "admin", description = "Operator routes (ADMIN_API_KEY)"),
        (name = "payments", description = "Stripe's webhook (authenticated by its signature)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the operations refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A customer API key (`tb_...`) or, on admin routes, the ADMIN_API_KEY",
                    ))
                    .build(),
            ),
        );
    }
}

fn error_responses(schema: &str, statuses: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|(status, description)| {
            let content = Content::new(Some(Ref::from_schema_name(schema)));
            let response = utoipa::openapi::ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

const UNAUTHORIZED: (u16, &str) = (
    401,
    "Missing, unknown, revoked or expired key (`unauthorized`)",
);
const BAD_GATEWAY: (u16, &str) = (502, "A downstream broke its contract (`bad_gateway`)");
const UNAVAILABLE: (u16, &str) = (
    503,
    "billing-svc or executor-svc unreachable (`service_unavailable`)",
);
const TIMEOUT: (u16, &str) = (504, "A downstream timed out (`timeout`)");

/// Errors of the customer's read routes.
pub struct CustomerErrors;

impl IntoResponses for CustomerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            "ErrorBody",
            &[
                (400, "A query parameter is invalid (`invalid_request`)"),
                UNAUTHORIZED,
                BAD_GATEWAY,
                UNAVAILABLE,
                TIMEOUT,
            ],
        )
    }
}

/// Errors of Stripe's webhook.
/// Errors of the reports an owner key or the operator reads (`/billing/statements`).
pub struct ReportErrors;

impl IntoResponses for ReportErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            "ErrorBody",
            &[
                (
                    400,
                    "A query parameter or the month is invalid, or the operator's key names no `accountId` \
                     (`invalid_request`)",
                ),
                UNAUTHORIZED,
                (
                    403,
                    "A member key, or a customer key that names an `accountId` (`forbidden`)",
                ),
                (404, "`accountId` names no account or key (`not_found`)"),
                BAD_GATEWAY,
                UNAVAILABLE,
                TIMEOUT,
            ],
        )
    }
}

pub struct StripeErrors;

impl IntoResponses for StripeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            "ErrorBody",
            &[
                (
                    400,
                    "A bad or stale signature (`invalid_signature`), or an event that cannot be credited \
                     (`invalid_request`)",
                ),
                (413, "Body too large (`payload_too_large`)"),
                BAD_GATEWAY,
                (
                    503,
                    "Payments are not configured (`payments_not_configured`), or billing-svc is unavailable",
                ),
                TIMEOUT,
            ],
        )
    }
}

/// Errors of the customer routes that change the account (owner keys only, a JSON body).
pub struct CustomerWriteErrors;

impl IntoResponses for CustomerWriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            "ErrorBody",
            &[
                (400, "Invalid input (`invalid_request`, `malformed_json`)"),
                UNAUTHORIZED,
                (
                    403,
                    "A member key: this needs an owner key of the account (`forbidden`)",
                ),
                (413, "Body too large (`payload_too_large`)"),
                (
                    415,
                    "Body is not `application/json` (`unsupported_media_type`)",
                ),
                (422, "Body does not fit the schema (`invalid_body`)"),
                BAD_GATEWAY,
                (
                    503,
                    "Payments are not configured (`payments_not_configured`), Stripe failed, or billing-svc \
                     is unavailable",
                ),
                TIMEOUT,
            ],
        )
    }
}

/// Errors of the operator routes.
pub struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            "ErrorBody",
            &[
                (400, "Invalid input (`invalid_request`, `malformed_json`)"),
                (401, "Missing or wrong admin key (`unauthorized`)"),
                (403, "A customer key on an admin route (`forbidden`)"),
                (404, "Unknown id (`not_found`)"),
                (
                    409,
                    "Idempotency key reused with another request (`already_exists`), or the state forbids it, \
                     e.g. a refund larger than what is left to refund (`failed_precondition`)",
                ),
                (413, "Body too large (`payload_too_large`)"),
                (
                    415,
                    "Body is not `application/json` (`unsupported_media_type`)",
                ),
                (
                    422,
                    "Body does not fit the schema, e.g. an amount with more than 9 decimals (`invalid_body`)",
                ),
                BAD_GATEWAY,
                UNAVAILABLE,
                TIMEOUT,
            ],
        )
    }
}

const EXECUTION_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "Invalid input, e.g. neither or both of `prompt` and `messages` (`invalid_request`)",
    ),
    UNAUTHORIZED,
    (
        402,
        "Refused before generation: `insufficient_credits`, `daily_limit_exceeded` or `monthly_limit_exceeded`; \
         details carry `currentBalance` (and `limit` for caps)",
    ),
    (409, "`Idempotency-Key` already used (`already_exists`)"),
    (413, "Body too large (`payload_too_large`)"),
    (
        415,
        "Body is not `application/json` (`unsupported_media_type`)",
    ),
    (422, "Body does not fit the schema (`invalid_body`)"),
    (429, "Rate limited (`rate_limited`)"),
    BAD_GATEWAY,
    UNAVAILABLE,
    (504, "The model timed out (`timeout`)"),
];

/// Errors of `/execute`.
pub struct ExecutionErrors;

impl IntoResponses for ExecutionErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses("ErrorBody", EXECUTION_ERRORS)
    }
}

/// Errors of `/v1/chat/completions`, in OpenAI's shape.
pub struct OpenAiErrors;

impl IntoResponses for OpenAiErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses("OpenAiErrorBody", EXECUTION_ERRORS)
    }
}

/// Errors of OpenAI's organization Usage and Costs APIs, in OpenAI's shape.
pub struct OrganizationErrors;

impl IntoResponses for OrganizationErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(
            "OpenAiErrorBody",
            &[
                (
                    400,
                    "Invalid query, e.g. no `start_time`, an unknown `bucket_width` or `group_by`, a `limit` \
                     out of range, or the operator's key without `accountId` (`invalid_request`)",
                ),
                UNAUTHORIZED,
                (
                    403,
                    "A member key, or a customer key with `accountId` (`forbidden`)",
                ),
                (404, "`accountId` names no account nor key (`not_found`)"),
                BAD_GATEWAY,
                UNAVAILABLE,
                TIMEOUT,
            ],
        )
    }
}

/// Errors of `/v1/messages`, in Anthropic's shape.
pub struct AnthropicErrors;

impl IntoResponses for AnthropicErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses("AnthropicErrorBody", EXECUTION_ERRORS)
    }
}
