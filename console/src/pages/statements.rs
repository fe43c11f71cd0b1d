//! Monthly statements (BILLING.md, "Statements"), for both audiences: an owner's list of its account's months
//! and each month's PDF, and the operator's of any account (its section on the account's page, and the PDFs).
//! The PDF is drawn here by `statement-pdf` from billing-svc's statement, as the gateway's
//! `/billing/statements/{YYYY-MM}.pdf` is.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use proto::billing::v1::account_service_client::AccountServiceClient;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

fn client(state: &ConsoleState) -> AccountServiceClient<tonic::transport::Channel> {
    AccountServiceClient::new(state.billing.clone())
}

/// The months of an account (the viewer's own, or the one the operator names), newest first, as the pages
/// list them.
pub(crate) async fn statement_rows(
    state: &ConsoleState,
    viewer: &Viewer,
    account_id: Option<String>,
) -> Result<Vec<Value>, PageError> {
    let list = client(state)
        .list_statements(viewer.request(pb::ListStatementsRequest { account_id }))
        .await?
        .into_inner();
    Ok(list
        .statements
        .iter()
        .map(|statement| {
            json!({
                "month": statement.month,
                "number": statement.number,
                "closed": statement.closed,
                "opening": statement.opening_balance,
                "closing": statement.closing_balance,
            })
        })
        .collect())
}

/// The owner's list of months.
pub async fn statements(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    let data = json!({ "statements": statement_rows(&state, &viewer, None).await? });
    Ok(page("statements.html", &viewer, "Statements", "statements", data)?.into_response())
}

/// One month's statement as a PDF, for its owner: `/console/statements/{YYYY-MM}.pdf`.
pub async fn statement_pdf(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    pdf(&state, &viewer, None, &file).await
}

/// Any account's statement as a PDF, for the operator: `/console/admin/accounts/{id}/statements/{YYYY-MM}.pdf`.
pub async fn account_statement_pdf(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    pdf(&state, &viewer, Some(id), &file).await
}

/// The PDF of the month `file` names (`YYYY-MM.pdf`), shown in the browser with a file name to save it under.
async fn pdf(
    state: &ConsoleState,
    viewer: &Viewer,
    account_id: Option<String>,
    file: &str,
) -> Result<Response, PageError> {
    let month = file.strip_suffix(".pdf").ok_or_else(|| {
        PageError::Invalid(format!("{file:?} is not a statement's PDF (YYYY-MM.pdf)"))
    })?;
    let statement = client(state)
        .get_statement(viewer.request(pb::GetStatementRequest {
            account_id,
            month: month.to_string(),
        }))
        .await?
        .into_inner();
    let bytes = statement_pdf::render(&statement, &state.operator_name)?;
    let file_name = statement_pdf::file_name(&statement);
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
