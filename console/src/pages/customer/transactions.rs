//! The customer's ledger rows (CONSOLE.md, "What each one sees"): transactions newest first, by type, and
//! every transaction of a type as CSV.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::csv::Csv;
use crate::error::PageError;
use crate::pages::customer::account_service::{CSV_ROWS, PAGE_ROWS, client};
use crate::pages::display::{TRANSACTION_TYPES, enum_name, time, transaction_type};
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

#[derive(Debug, Deserialize, Default)]
pub struct TransactionsQuery {
    #[serde(default, rename = "type")]
    kind: String,
    cursor: Option<String>,
}

/// Transactions, newest first, by type.
pub async fn transactions(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<TransactionsQuery>,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let kind = transaction_type(&query.kind)?;
    let page_of_rows = client(&state)
        .list_transactions(viewer.request(pb::ListTransactionsRequest {
            limit: PAGE_ROWS,
            cursor: query.cursor.clone(),
            r#type: kind.into(),
        }))
        .await?
        .into_inner();
    let rows: Vec<Value> = page_of_rows
        .transactions
        .iter()
        .map(|row| {
            json!({
                "timestamp": time(row.timestamp.as_ref()), "type": enum_name(row.r#type().as_str_name(), "TRANSACTION_TYPE_"),
                "amount": row.amount, "balance_after": row.balance_after, "description": row.description,
            })
        })
        .collect();
    let data = json!({
        "types": TRANSACTION_TYPES, "type": query.kind, "transactions": rows, "next": page_of_rows.next_cursor,
    });
    Ok(page(
        "transactions.html",
        &viewer,
        "Transactions",
        "transactions",
        data,
    )?
    .into_response())
}

/// Every transaction of a type as CSV.
pub async fn transactions_csv(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<TransactionsQuery>,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let kind = transaction_type(&query.kind)?;
    let mut billing = client(&state);
    let mut csv = Csv::new(&[
        "id",
        "timestamp",
        "type",
        "amount",
        "balance_after",
        "description",
        "api_key_id",
    ]);
    let (mut cursor, mut rows) = (None, 0usize);
    loop {
        let page_of_rows = billing
            .list_transactions(viewer.request(pb::ListTransactionsRequest {
                limit: 1000,
                cursor,
                r#type: kind.into(),
            }))
            .await?
            .into_inner();
        for row in &page_of_rows.transactions {
            let timestamp = time(row.timestamp.as_ref()).unwrap_or_default();
            let kind = enum_name(row.r#type().as_str_name(), "TRANSACTION_TYPE_");
            csv.row([
                (row.id.as_str(), false),
                (timestamp.as_str(), false),
                (kind.as_str(), false),
                (row.amount.as_str(), false),
                (row.balance_after.as_str(), false),
                (row.description.as_str(), true),
                (row.api_key_id.as_str(), false),
            ]);
        }
        rows += page_of_rows.transactions.len();
        if rows > CSV_ROWS {
            return Err(PageError::Invalid(format!(
                "more than {CSV_ROWS} transactions: filter by type"
            )));
        }
        match page_of_rows.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(csv.download("transactions.csv"))
}
