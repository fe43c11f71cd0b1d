//! The account's monthly statements (BILLING.md, "Statements"), for owners: one row a month with its opening
//! and closing balance, and each month's PDF, drawn here by `statement-pdf` from billing-svc's statement as
//! the gateway's `/billing/statements/{YYYY-MM}.pdf` is.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde_json::json;

use crate::error::PageError;
use crate::pages::customer::account_service::client;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The list of months, newest first.
pub async fn statements(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    let list = client(&state)
        .list_statements(viewer.request(pb::ListStatementsRequest { account_id: None }))
        .await?
        .into_inner();
    let rows: Vec<_> = list
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
        .collect();
    let data = json!({ "statements": rows });
    Ok(page("statements.html", &viewer, "Statements", "statements", data)?.into_response())
}

/// One month's statement as a PDF: `/console/statements/{YYYY-MM}.pdf`.
pub async fn statement_pdf(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    let month = file.strip_suffix(".pdf").ok_or_else(|| {
        PageError::Invalid(format!("{file:?} is not a statement's PDF (YYYY-MM.pdf)"))
    })?;
    let statement = client(&state)
        .get_statement(viewer.request(pb::GetStatementRequest {
            account_id: None,
            month: month.to_string(),
        }))
        .await?
        .into_inner();
    pdf_response(&state, &statement)
}

/// The PDF of `statement`, shown in the browser with a file name to save it under.
pub(crate) fn pdf_response(
    state: &ConsoleState,
    statement: &pb::Statement,
) -> Result<Response, PageError> {
    let bytes = statement_pdf::render(statement, &state.operator_name)?;
    let file_name = format!("statement-{}-{}.pdf", statement.month, statement.number);
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
