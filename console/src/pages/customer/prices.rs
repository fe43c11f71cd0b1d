//! What the account pays per model now (BILLING.md, "Prices"): the charged prices only.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use proto::billing::v1 as pb;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::pages::customer::account_service::client;
use crate::pages::display::{time, zero_if_empty};
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// What the account pays per model now (AccountService/ListPrices): the charged price per 1,000 tokens of
/// each class and the request fee, exactly as billing-svc gives them. Base prices and markups are the
/// operator's and billing-svc never sends them here.
pub async fn prices(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let list = client(&state)
        .list_prices(viewer.request(pb::ListAccountPricesRequest {}))
        .await?
        .into_inner();
    let rows: Vec<Value> = list
        .prices
        .iter()
        .map(|price| {
            json!({
                "model": price.model,
                "every_other_model": price.model == "*",
                "input": price.input_price_per_1k, "output": price.output_price_per_1k,
                "cached_input": price.cached_input_price_per_1k,
                "cache_write": price.cache_write_price_per_1k,
                "cache_write_1h": price.cache_write_1h_price_per_1k,
                "audio_input": price.audio_input_price_per_1k,
                "audio_output": price.audio_output_price_per_1k,
                "request_fee": zero_if_empty(&price.request_fee),
                "effective_from": time(price.effective_from.as_ref()),
            })
        })
        .collect();
    Ok(page(
        "prices.html",
        &viewer,
        "Prices",
        "prices",
        json!({"prices": rows}),
    )?
    .into_response())
}
