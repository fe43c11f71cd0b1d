//! The price book (BILLING.md, "Prices"): every row with its base prices (before markup) beside the prices
//! charged, which rows are in effect, ended, replaced or scheduled; set a price, end one.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms;
use crate::pages::confirm::{confirm_page, confirmed};
use crate::pages::display::{notice, time};
use crate::pages::operator::admin_service::client;
use crate::render::form_page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// Where a price row stands among the rows of its model and account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PriceStatus {
    /// The newest row that has started, and it prices calls: it can be ended.
    InEffect,
    /// A row that ends the model's price (for its account) from its time on.
    Ended,
    /// An older row, followed by a newer price or an end.
    Replaced,
    /// A row whose time has not come yet.
    Scheduled,
}

impl PriceStatus {
    fn name(self) -> &'static str {
        match self {
            PriceStatus::InEffect => "in effect",
            PriceStatus::Ended => "ended",
            PriceStatus::Replaced => "replaced",
            PriceStatus::Scheduled => "scheduled",
        }
    }
}

/// A moment as comparable seconds and nanoseconds (a missing one counts as the earliest).
fn moment(at: Option<&prost_types::Timestamp>) -> (i64, i32) {
    at.map_or((i64::MIN, 0), |at| (at.seconds, at.nanos))
}

/// The status of each row of `prices` at `now`: per model and account, the newest row that has started is
/// the one in effect, unless it is an end (the rule billing-svc's `EndPrice` applies; on a tie of times the
/// row listed last wins, as there).
fn price_statuses(prices: &[pb::Price], now: (i64, i32)) -> Vec<PriceStatus> {
    let mut newest: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, row) in prices.iter().enumerate() {
        let at = moment(row.effective_from.as_ref());
        if at > now {
            continue;
        }
        let slot = newest
            .entry((row.model.as_str(), row.account_id.as_str()))
            .or_insert(index);
        if moment(prices[*slot].effective_from.as_ref()) <= at {
            *slot = index;
        }
    }
    prices
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let key = (row.model.as_str(), row.account_id.as_str());
            if row.ended {
                PriceStatus::Ended
            } else if moment(row.effective_from.as_ref()) > now {
                PriceStatus::Scheduled
            } else if newest.get(&key) == Some(&index) {
                PriceStatus::InEffect
            } else {
                PriceStatus::Replaced
            }
        })
        .collect()
}

/// A price row as the page shows it: base prices (before markup), the prices charged (after), its status.
fn price_row(price: &pb::Price, status: PriceStatus) -> Value {
    json!({
        "model": price.model, "account": price.account_id,
        "base": {
            "input": price.base_input_price_per_1k, "output": price.base_output_price_per_1k,
            "cached_input": price.base_cached_input_price_per_1k,
            "cache_write": price.base_cache_write_price_per_1k,
            "cache_write_1h": price.base_cache_write_1h_price_per_1k,
            "audio_input": price.base_audio_input_price_per_1k,
            "audio_output": price.base_audio_output_price_per_1k,
        },
        "request_fee": if price.request_fee.is_empty() { "0" } else { price.request_fee.as_str() },
        "markup": price.markup,
        "charged": {"input": price.input_price_per_1k, "output": price.output_price_per_1k},
        "effective_from": time(price.effective_from.as_ref()),
        "status": status.name(),
        "ended": price.ended,
    })
}

#[derive(Debug, Deserialize, Default)]
pub struct PricesQuery {
    done: Option<String>,
    /// The model and account of the row just saved or ended, to show it in the notice.
    model: Option<String>,
    #[serde(default)]
    account_id: String,
}

/// The price book: every row with its base prices (before markup) beside the prices charged (after), which
/// rows are in effect, ended, replaced or scheduled, an End button on each row in effect, and the form that
/// sets a price.
pub async fn prices(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<PricesQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    prices_view(&state, &viewer, &query, None).await
}

/// The price book; with `retry`, its form sent back with what was typed and why it was refused.
async fn prices_view(
    state: &ConsoleState,
    viewer: &Viewer,
    query: &PricesQuery,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let list = client(state)
        .list_prices(viewer.request(pb::ListPricesRequest {}))
        .await?
        .into_inner();
    let now = chrono::Utc::now();
    let statuses = price_statuses(
        &list.prices,
        (
            now.timestamp(),
            i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        ),
    );
    let rows: Vec<Value> = list
        .prices
        .iter()
        .zip(&statuses)
        .map(|(price, status)| price_row(price, *status))
        .collect();
    let default_in_effect = list
        .prices
        .iter()
        .zip(&statuses)
        .any(|(price, status)| price.model == "*" && *status == PriceStatus::InEffect);
    // The notice names the row just saved or ended as billing-svc lists it (the newest of its model and
    // account): what the page says comes from the price book, not from the link.
    let changed = query.model.as_deref().and_then(|model| {
        list.prices
            .iter()
            .zip(&statuses)
            .filter(|(price, _)| price.model == model && price.account_id == query.account_id)
            .max_by_key(|(price, _)| moment(price.effective_from.as_ref()))
            .map(|(price, status)| price_row(price, *status))
    });
    let data = json!({
        "prices": rows,
        "default_in_effect": default_in_effect,
        "done": query.done.as_deref().filter(|done| ["price", "ended"].contains(done)),
        "changed": changed,
        "notice": notice(query.done.as_deref()),
        "default_markup": DEFAULT_MARKUP,
    });
    form_page("admin_prices.html", viewer, "Prices", "prices", data, retry)
}

/// The price form's fields, by billing-svc's names for them too ([`forms::Retry`]).
const PRICE_FIELDS: forms::Fields = &[
    ("model", &["model"]),
    ("account_id", &["account_id", "account"]),
    ("input", &["base_input_price_per_1k"]),
    ("output", &["base_output_price_per_1k"]),
    ("markup", &["markup"]),
    ("cached_input", &["base_cached_input_price_per_1k"]),
    ("cache_write", &["base_cache_write_price_per_1k"]),
    ("cache_write_1h", &["base_cache_write_1h_price_per_1k"]),
    ("audio_input", &["base_audio_input_price_per_1k"]),
    ("audio_output", &["base_audio_output_price_per_1k"]),
    ("request_fee", &["request_fee"]),
];

/// The markup billing-svc applies when a price row is set without one (the seed's; BILLING.md, "Prices").
const DEFAULT_MARKUP: &str = "1.5";

/// A price row as typed (BILLING.md, "Prices"): the base prices before markup; the class prices, the request
/// fee, the markup and the account are optional (billing-svc fills the defaults).
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct PriceForm {
    #[serde(skip_serializing)]
    csrf: String,
    model: String,
    #[serde(default)]
    account_id: String,
    input: String,
    output: String,
    #[serde(default)]
    cached_input: String,
    #[serde(default)]
    cache_write: String,
    #[serde(default)]
    cache_write_1h: String,
    #[serde(default)]
    audio_input: String,
    #[serde(default)]
    audio_output: String,
    #[serde(default)]
    request_fee: String,
    #[serde(default)]
    markup: String,
}

/// The prices page, its notice naming the row of `model` and `account_id`.
fn back_to_prices(done: &str, model: &str, account_id: Option<&str>) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("done", done)
        .append_pair("model", model)
        .append_pair("account_id", account_id.unwrap_or(""))
        .finish();
    Redirect::to(&format!("/console/admin/prices?{query}")).into_response()
}

pub async fn set_price(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<PriceForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let saved = client(&state)
        .set_price(viewer.request(pb::SetPriceRequest {
            model: form.model.trim().to_string(),
            base_input_price_per_1k: form.input.trim().to_string(),
            base_output_price_per_1k: form.output.trim().to_string(),
            markup: forms::optional(&form.markup),
            effective_from: None,
            base_cached_input_price_per_1k: forms::optional(&form.cached_input),
            base_cache_write_price_per_1k: forms::optional(&form.cache_write),
            base_cache_write_1h_price_per_1k: forms::optional(&form.cache_write_1h),
            base_audio_input_price_per_1k: forms::optional(&form.audio_input),
            base_audio_output_price_per_1k: forms::optional(&form.audio_output),
            request_fee: forms::optional(&form.request_fee),
            account_id: forms::optional(&form.account_id),
        }))
        .await;
    match saved {
        Ok(saved) => {
            let saved = saved.into_inner();
            Ok(back_to_prices(
                "price",
                &saved.model,
                Some(saved.account_id.as_str()),
            ))
        }
        Err(status) => {
            let error = PageError::from(status);
            // Every field of the form is a price or a name: nothing secret to leave out.
            let values = serde_json::to_value(&form).unwrap_or_default();
            let retry = forms::Retry::of(error, "price", PRICE_FIELDS, values)?;
            prices_view(&state, &viewer, &PricesQuery::default(), Some(retry)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EndPriceForm {
    csrf: String,
    model: String,
    #[serde(default)]
    account_id: String,
    /// `yes` once the end was confirmed ([`crate::pages::confirm::ConfirmForm`]).
    #[serde(default)]
    confirmed: String,
}

/// Ends a price in effect from now on (`EndPrice`): the next level down prices the model, or nothing does.
pub async fn end_price(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<EndPriceForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    if !confirmed(&form.confirmed) {
        let whom = match forms::optional(&form.account_id) {
            Some(account_id) => format!("account {account_id}"),
            None => "all accounts".to_string(),
        };
        return confirm_page(
            &viewer,
            &format!(
                "End the price of {} for {whom}? From now on the next row down prices it, or its calls are refused.",
                form.model
            ),
            "/console/admin/prices/end",
            &[("model", &form.model), ("account_id", &form.account_id)],
            "End price",
            "/console/admin/prices",
        );
    }
    let account_id = forms::optional(&form.account_id);
    client(&state)
        .end_price(viewer.request(pb::EndPriceRequest {
            model: form.model.clone(),
            account_id: account_id.clone(),
        }))
        .await?;
    Ok(back_to_prices("ended", &form.model, account_id.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, account: &str, seconds: i64, ended: bool) -> pb::Price {
        pb::Price {
            model: model.to_string(),
            account_id: account.to_string(),
            effective_from: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            ended,
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_started_row_of_each_model_and_account_is_in_effect() {
        let prices = [
            row("*", "", 10, false),
            row("gpt-4o", "", 10, false),
            row("gpt-4o", "", 20, false),
            row("gpt-4o", "", 90, false),
            row("gpt-4o", "acct", 10, false),
            row("gpt-4o", "acct", 30, true),
            row("old", "", 10, false),
            row("old", "", 40, true),
        ];
        let statuses = price_statuses(&prices, (50, 0));
        use PriceStatus::*;
        assert_eq!(
            statuses,
            [
                InEffect, Replaced, InEffect, Scheduled, Replaced, Ended, Replaced, Ended
            ]
        );
    }
}
