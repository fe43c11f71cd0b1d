//! Monthly statements (BILLING.md, "Statements"): `GET /billing/statements` lists an account's months and
//! `GET /billing/statements/{YYYY-MM}` is one month's statement, as JSON or, with `.pdf` after the month,
//! as a PDF (rendered here by `statement-pdf` from billing-svc's answer, so both carry the same figures).
//! billing-svc decides who may read them (`AccountService/ListStatements`, `GetStatement`): an owner key
//! its own account, the operator's key the account named by `accountId`.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Service};
use crate::extract::{CallContext, PathParams, QueryParams};
use crate::openapi::ReportErrors;
use crate::routes::billing_call::billing;
use crate::state::AppState;
use crate::timestamp::Timestamp;
use crate::wire::{money, required, time};
use money::Money;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// The operator's key only, and required with it: the account (or one of its keys) to read.
    #[serde(rename = "accountId")]
    #[param(rename = "accountId")]
    pub account_id: Option<String>,
}

/// The account's statements, newest first: the current month's, then one per month back to the account's
/// creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementList {
    pub statements: Vec<StatementSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatementSummary {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Counted from 1, the account's creation month.
    pub number: u32,
    /// A closed month's statement never changes; the current month's is computed when asked.
    pub closed: bool,
    pub opening_balance: Money,
    pub closing_balance: Money,
}

/// The sum and count of one type of the month's ledger rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Movement {
    /// Signed.
    pub amount: Money,
    /// Ledger rows.
    pub count: u64,
}

/// The month's billed usage of one model, by token class.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub model: String,
    pub requests: u64,
    /// Every input token; the input classes below are inside it.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    /// Inside `cacheWriteTokens`.
    #[serde(rename = "cacheWrite1hTokens")]
    pub cache_write_1h_tokens: u64,
    /// Inside `outputTokens`.
    pub reasoning_tokens: u64,
    pub audio_input_tokens: u64,
    pub audio_output_tokens: u64,
    pub input_cost: Money,
    pub output_cost: Money,
    pub request_fees: Money,
    /// What the ledger took for them (positive).
    pub charged: Money,
    /// What volume tiers took off them (positive; already out of `charged`).
    pub volume_discount: Money,
}

/// One account's month: `openingBalance` + every movement = `closingBalance` = the ledger at the month's end.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// `statement`.
    pub object: &'static str,
    pub account_id: String,
    pub account_name: String,
    pub month: String,
    pub number: u32,
    /// `[periodStart, periodEnd)`, UTC.
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub closed: bool,
    /// When it was frozen (closed) or computed (the current month).
    pub issued_at: Timestamp,
    /// `usd`.
    pub currency: &'static str,
    pub opening_balance: Money,
    /// Credits bought.
    pub credits: Movement,
    /// Promotional grants.
    pub grants: Movement,
    /// Usage deductions (negative).
    pub usage: Movement,
    pub refunds: Movement,
    /// Operators' corrections, either sign.
    pub adjustments: Movement,
    /// Grant remainders that expired (negative).
    pub expiries: Movement,
    pub closing_balance: Money,
    /// Whose `charged` sum to `-usage.amount`.
    pub usage_by_model: Vec<ModelUsage>,
    /// What volume tiers took off the month's usage (positive; already inside `usage`).
    pub volume_discounts: Money,
}

const B: Service = Service::Billing;

fn movement(field: &str, movement: Option<pb::StatementMovement>) -> Result<Movement, ApiError> {
    let movement = required(B, field, movement)?;
    Ok(Movement {
        amount: money(B, field, &movement.amount)?,
        count: movement.count,
    })
}

impl TryFrom<pb::Statement> for Statement {
    type Error = ApiError;

    fn try_from(statement: pb::Statement) -> Result<Statement, ApiError> {
        let usage_by_model = statement
            .usage_by_model
            .into_iter()
            .map(|model| {
                let classes = model.classes.unwrap_or_default();
                Ok(ModelUsage {
                    input_cost: money(B, "input_cost", &model.input_cost)?,
                    output_cost: money(B, "output_cost", &model.output_cost)?,
                    request_fees: money(B, "request_fees", &model.request_fees)?,
                    charged: money(B, "charged", &model.charged)?,
                    volume_discount: money(B, "volume_discount", &model.volume_discount)?,
                    model: model.model,
                    requests: model.requests,
                    input_tokens: model.input_tokens,
                    output_tokens: model.output_tokens,
                    cached_input_tokens: classes.cached_input_tokens,
                    cache_write_tokens: classes.cache_write_tokens,
                    cache_write_1h_tokens: classes.cache_write_1h_tokens,
                    reasoning_tokens: classes.reasoning_tokens,
                    audio_input_tokens: classes.audio_input_tokens,
                    audio_output_tokens: classes.audio_output_tokens,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Statement {
            object: "statement",
            period_start: time("period_start", statement.period_start)?,
            period_end: time("period_end", statement.period_end)?,
            issued_at: time("issued_at", statement.issued_at)?,
            currency: "usd",
            opening_balance: money(B, "opening_balance", &statement.opening_balance)?,
            credits: movement("credits", statement.credits)?,
            grants: movement("grants", statement.grants)?,
            usage: movement("usage", statement.usage)?,
            refunds: movement("refunds", statement.refunds)?,
            adjustments: movement("adjustments", statement.adjustments)?,
            expiries: movement("expiries", statement.expiries)?,
            closing_balance: money(B, "closing_balance", &statement.closing_balance)?,
            volume_discounts: money(B, "volume_discounts", &statement.volume_discounts)?,
            usage_by_model,
            account_id: statement.account_id,
            account_name: statement.account_name,
            month: statement.month,
            number: statement.number,
            closed: statement.closed,
        })
    }
}

/// The account's months, newest first, each with its opening and closing balance.
#[utoipa::path(
    get,
    path = "/billing/statements",
    tag = "billing",
    security(("bearer" = [])),
    params(StatementQuery),
    responses((status = 200, body = StatementList), ReportErrors)
)]
#[tracing::instrument(skip_all)]
pub async fn statements(
    State(state): State<AppState>,
    context: CallContext,
    QueryParams(query): QueryParams<StatementQuery>,
) -> Result<Json<StatementList>, ApiError> {
    let request = context.request(pb::ListStatementsRequest {
        account_id: query.account_id,
    });
    let response = billing(state.account().list_statements(request)).await?;
    let statements = response
        .statements
        .into_iter()
        .map(|summary| {
            Ok(StatementSummary {
                opening_balance: money(B, "opening_balance", &summary.opening_balance)?,
                closing_balance: money(B, "closing_balance", &summary.closing_balance)?,
                month: summary.month,
                number: summary.number,
                closed: summary.closed,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(StatementList { statements }))
}

/// One month's statement: `YYYY-MM` for JSON, `YYYY-MM.pdf` for the same statement as a PDF.
#[utoipa::path(
    get,
    path = "/billing/statements/{month}",
    tag = "billing",
    security(("bearer" = [])),
    params(
        ("month" = String, Path, description = "`YYYY-MM` (UTC), or `YYYY-MM.pdf` for the PDF"),
        StatementQuery
    ),
    responses(
        (
            status = 200,
            description = "The statement (`YYYY-MM`), or its PDF (`YYYY-MM.pdf`)",
            content((Statement = "application/json"), ("application/pdf"))
        ),
        ReportErrors
    )
)]
#[tracing::instrument(skip_all, fields(month = %month))]
pub async fn statement(
    State(state): State<AppState>,
    context: CallContext,
    PathParams(month): PathParams<String>,
    QueryParams(query): QueryParams<StatementQuery>,
) -> Result<Response, ApiError> {
    let (month, pdf) = match month.strip_suffix(".pdf") {
        Some(month) => (month.to_string(), true),
        None => (month, false),
    };
    let request = context.request(pb::GetStatementRequest {
        account_id: query.account_id,
        month,
    });
    let statement = billing(state.account().get_statement(request)).await?;
    if !pdf {
        return Ok(Json(Statement::try_from(statement)?).into_response());
    }
    let file_name = statement_pdf::file_name(&statement);
    let bytes =
        statement_pdf::render(&statement, &state.operator_name).map_err(|error| match error {
            statement_pdf::RenderError::Amount { .. } => ApiError::ContractViolation {
                service: B,
                message: error.to_string(),
            },
            other => ApiError::Internal(format!("rendering the statement's PDF: {other}")),
        })?;
    Ok((
        [
            (CONTENT_TYPE, "application/pdf".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("inline; filename=\"{file_name}\""),
            ),
            (CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
