//! The customer's pages (CONSOLE.md, "What each one sees"): overview, usage (chart, records, CSV),
//! transactions (CSV), grants, workspaces, the prices the account pays; for owners the account's keys,
//! webhooks, alerts and auto-recharge, and top-ups.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use proto::billing::v1 as pb;
use proto::billing::v1::account_service_client::AccountServiceClient;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{
    TRANSACTION_TYPES, account, by_model, enum_name, grant, key_spend, notice, time, totals,
    transaction_type,
};
use crate::ConsoleState;
use crate::chart;
use crate::csv::Csv;
use crate::error::PageError;
use crate::forms;
use crate::render::{form_page, page};
use crate::session::Viewer;

/// Records read at most to draw a range's chart and totals.
const CHART_RECORDS: usize = 5_000;
/// Rows a CSV export may hold.
const CSV_ROWS: usize = 50_000;
/// Rows of a page of a table.
const PAGE_ROWS: u32 = 50;

fn client(state: &ConsoleState) -> AccountServiceClient<Channel> {
    AccountServiceClient::new(state.billing.clone())
}

fn this_month() -> pb::TimeRange {
    let today = Utc::now().date_naive();
    let first = today.with_day0(0).unwrap_or(today);
    pb::TimeRange {
        from: Some(forms::start_of(first)),
        to: None,
    }
}

/// Whether this viewer can top up here: an owner, with payments configured.
async fn payments_configured(state: &ConsoleState, viewer: &Viewer) -> Result<bool, PageError> {
    if !viewer.owner() {
        return Ok(false);
    }
    Ok(client(state)
        .get_auto_recharge(viewer.request(pb::GetAutoRechargeRequest {}))
        .await?
        .into_inner()
        .payments_configured)
}

/// The overview: balance, holds, spend against the caps, a low-balance warning and top-up.
pub async fn overview(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    overview_view(&state, &viewer, None).await
}

/// The overview; with `retry`, its top-up form sent back with the amount typed and why it was refused.
async fn overview_view(
    state: &ConsoleState,
    viewer: &Viewer,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let mut billing = client(state);
    let account_pb = billing
        .get_account(viewer.request(pb::GetAccountRequest {}))
        .await?
        .into_inner();
    let stats = billing
        .get_stats(viewer.request(pb::GetStatsRequest {
            range: Some(this_month()),
            api_key_id: None,
        }))
        .await?
        .into_inner();
    let payments = payments_configured(state, viewer).await?;
    // A member's spend is its key's: shown against the key's own caps (its policy), beside the account's.
    // (`ListKeys` answers a member with itself alone.)
    let own_key = if viewer.owner() {
        None
    } else {
        billing
            .list_keys(viewer.request(pb::ListAccountKeysRequest {}))
            .await?
            .into_inner()
            .keys
            .first()
            .map(key_spend)
    };
    let decimal = |text: &str| text.parse::<Decimal>().unwrap_or_default();
    let available = decimal(&account_pb.credits_balance) - decimal(&account_pb.held_credits);
    let highest_alert = account_pb
        .low_balance_alerts
        .iter()
        .map(|threshold| decimal(threshold))
        .max();
    let low = available <= Decimal::ZERO || highest_alert.is_some_and(|alert| available < alert);
    let data = json!({
        "account": account(&account_pb),
        "today": totals(stats.today.as_ref())["cost"],
        "month": totals(stats.this_month.as_ref())["cost"],
        "models": by_model(&stats),
        "low": low,
        "payments": payments,
        "own_key": own_key,
    });
    form_page("overview.html", viewer, "Overview", "overview", data, retry)
}

#[derive(Debug, Deserialize, Default)]
pub struct UsageQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    key: String,
    /// [`EndUser::param`]: empty for every call.
    #[serde(default)]
    end_user: String,
    cursor: Option<String>,
}

/// The end user a usage filter picks (BILLING.md, "End users").
#[derive(Debug, Clone, PartialEq, Eq)]
enum EndUser {
    /// The calls that named no end user.
    NoneNamed,
    Named(String),
}

impl EndUser {
    /// Read from the `end_user` parameter: `none`, or `u:` and the id; empty for every call.
    fn read(param: &str) -> Result<Option<EndUser>, PageError> {
        match param {
            "" => Ok(None),
            "none" => Ok(Some(EndUser::NoneNamed)),
            _ => match param.strip_prefix("u:") {
                Some(id) if !id.is_empty() => Ok(Some(EndUser::Named(id.to_string()))),
                _ => Err(PageError::Invalid(
                    "end user: pick one from the list".into(),
                )),
            },
        }
    }

    /// The `end_user` parameter naming it (and the value of its option in the filter's list).
    fn param(end_user: Option<&EndUser>) -> String {
        match end_user {
            None => String::new(),
            Some(EndUser::NoneNamed) => "none".into(),
            Some(EndUser::Named(id)) => format!("u:{id}"),
        }
    }

    /// As billing-svc's filter takes it: the id, or empty for the calls that named none.
    fn filter(&self) -> String {
        match self {
            EndUser::NoneNamed => String::new(),
            EndUser::Named(id) => id.clone(),
        }
    }

    /// The end user billing-svc recorded (empty: none named).
    fn of(recorded: &str) -> EndUser {
        if recorded.is_empty() {
            EndUser::NoneNamed
        } else {
            EndUser::Named(recorded.to_string())
        }
    }
}

/// A usage filter as typed, and as the API takes it.
struct UsageFilter {
    from: NaiveDate,
    to: NaiveDate,
    model: Option<String>,
    /// A key of the account (owners; billing-svc answers a member with its own calls only).
    key: Option<String>,
    end_user: Option<EndUser>,
}

impl UsageFilter {
    /// Defaults to the last 30 UTC days.
    fn read(query: &UsageQuery) -> Result<UsageFilter, PageError> {
        let today = Utc::now().date_naive();
        let (from, to) =
            forms::day_range(&query.from, &query.to, today - Duration::days(29), today)?;
        Ok(UsageFilter {
            from,
            to,
            model: forms::optional(&query.model),
            key: forms::optional(&query.key),
            end_user: EndUser::read(&query.end_user)?,
        })
    }

    fn request(&self, limit: u32, cursor: Option<String>) -> pb::ListUsageRequest {
        pb::ListUsageRequest {
            limit,
            cursor,
            range: Some(pb::TimeRange {
                from: Some(forms::start_of(self.from)),
                to: Some(forms::end_of(self.to)),
            }),
            workspace_id: None,
            model: self.model.clone(),
            api_key_id: self.key.clone(),
            end_user_id: self.end_user.as_ref().map(EndUser::filter),
            ..Default::default()
        }
    }

    /// The filter as a query string (for links to the chart, the CSV and the next page).
    fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("from", &self.from.to_string())
            .append_pair("to", &self.to.to_string())
            .append_pair("model", self.model.as_deref().unwrap_or(""))
            .append_pair("key", self.key.as_deref().unwrap_or(""))
            .append_pair("end_user", &EndUser::param(self.end_user.as_ref()))
            .finish()
    }

    /// The links of the date presets (today, last 7 days, this month, last month), the model and key kept.
    fn presets(&self, today: NaiveDate) -> Vec<Value> {
        let month_start = today.with_day(1).unwrap_or(today);
        let last_month_end = month_start - Duration::days(1);
        let last_month_start = last_month_end.with_day(1).unwrap_or(last_month_end);
        [
            ("Today", today, today),
            ("Last 7 days", today - Duration::days(6), today),
            ("This month", month_start, today),
            ("Last month", last_month_start, last_month_end),
        ]
        .into_iter()
        .map(|(label, from, to)| {
            let link = UsageFilter {
                from,
                to,
                model: self.model.clone(),
                key: self.key.clone(),
                end_user: self.end_user.clone(),
            };
            json!({
                "label": label,
                "query": link.query(),
                "current": self.from == from && self.to == to,
            })
        })
        .collect()
    }
}

/// Every usage record of the filter, newest first, at most `max` (and whether there were more).
async fn all_usage(
    state: &ConsoleState,
    viewer: &Viewer,
    filter: &UsageFilter,
    max: usize,
) -> Result<(Vec<pb::UsageRecord>, bool), PageError> {
    let mut billing = client(state);
    let mut records = Vec::new();
    let mut cursor = None;
    loop {
        let page = billing
            .list_usage(viewer.request(filter.request(1000, cursor)))
            .await?
            .into_inner();
        records.extend(page.records);
        if records.len() >= max {
            records.truncate(max);
            return Ok((records, true));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((records, false)),
        }
    }
}

/// Spend per UTC day and model.
struct DailySpend {
    days: Vec<NaiveDate>,
    models: Vec<String>,
    cells: BTreeMap<(NaiveDate, String), (u64, Decimal)>,
}

fn daily_spend(filter: &UsageFilter, records: &[pb::UsageRecord]) -> DailySpend {
    let mut cells: BTreeMap<(NaiveDate, String), (u64, Decimal)> = BTreeMap::new();
    for record in records {
        let Some(day) = record
            .timestamp
            .as_ref()
            .and_then(|at| chrono::DateTime::<Utc>::from_timestamp(at.seconds, 0))
            .map(|at| at.date_naive())
        else {
            continue;
        };
        let charged = record.charged.parse::<Decimal>().unwrap_or_default();
        let cell = cells.entry((day, record.model.clone())).or_default();
        cell.0 += 1;
        cell.1 += charged;
    }
    let mut models: Vec<String> = cells.keys().map(|(_, model)| model.clone()).collect();
    models.sort();
    models.dedup();
    let days = filter
        .from
        .iter_days()
        .take_while(|day| *day <= filter.to)
        .collect();
    DailySpend {
        days,
        models,
        cells,
    }
}

/// Usage: spend per day by model (chart and table) over a range, and the calls, newest first.
pub async fn usage(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<UsageQuery>,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let filter = UsageFilter::read(&query)?;
    let (records, truncated) = all_usage(&state, &viewer, &filter, CHART_RECORDS).await?;
    let spend = daily_spend(&filter, &records);
    let (mut total_requests, mut total_cost) = (0u64, Decimal::ZERO);
    let days: Vec<Value> = spend
        .cells
        .iter()
        .rev()
        .map(|((day, model), (requests, cost))| {
            total_requests += requests;
            total_cost += cost;
            json!({"day": day.to_string(), "model": model, "requests": requests, "cost": cost.normalize().to_string()})
        })
        .collect();
    let page_of_calls = client(&state)
        .list_usage(viewer.request(filter.request(PAGE_ROWS, query.cursor.clone())))
        .await?
        .into_inner();
    let mut rows: Vec<Value> = page_of_calls
        .records
        .iter()
        .map(|record| {
            let classes = record.classes.unwrap_or_default();
            json!({
                "id": record.id, "timestamp": time(record.timestamp.as_ref()), "model": record.model,
                "endpoint": record.endpoint, "status": enum_name(record.status().as_str_name(), "USAGE_STATUS_"),
                "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
                "cached_input_tokens": classes.cached_input_tokens,
                "cache_write_tokens": classes.cache_write_tokens,
                "cache_write_1h_tokens": classes.cache_write_1h_tokens,
                "reasoning_tokens": classes.reasoning_tokens,
                "audio_input_tokens": classes.audio_input_tokens,
                "audio_output_tokens": classes.audio_output_tokens,
                "request_fee": zero_if_empty(&record.request_fee),
                "charged": record.charged,
                "api_key_id": record.api_key_id, "workspace_id": record.workspace_id,
                "end_user_id": record.end_user_id, "duration_ms": record.duration_ms,
            })
        })
        .collect();
    // The filter's choices: the account's models over the range (and the one chosen), and for owners the
    // account's keys.
    let stats = client(&state)
        .get_stats(viewer.request(pb::GetStatsRequest {
            range: filter.request(1, None).range,
            api_key_id: None,
        }))
        .await?
        .into_inner();
    let mut models: Vec<String> = stats.by_model.iter().map(|m| m.model.clone()).collect();
    models.extend(spend.models.iter().cloned());
    models.extend(filter.model.iter().cloned());
    models.sort();
    models.dedup();
    // Spend by end user over the range (the model and key filters aside), each linked to its calls; the
    // list is also the end user filter's choices.
    let end_users: Vec<Value> = stats
        .by_end_user
        .iter()
        .map(|entry| {
            let chosen = EndUser::of(&entry.end_user_id);
            let link = UsageFilter {
                from: filter.from,
                to: filter.to,
                model: None,
                key: None,
                end_user: Some(chosen.clone()),
            };
            let totals = entry.totals.clone().unwrap_or_default();
            json!({
                "id": entry.end_user_id, "param": EndUser::param(Some(&chosen)), "query": link.query(),
                "requests": totals.requests, "input_tokens": totals.input_tokens,
                "output_tokens": totals.output_tokens, "cost": totals.total_cost,
            })
        })
        .collect();
    let chosen_end_user = EndUser::param(filter.end_user.as_ref());
    let keys: Vec<Value> = if viewer.owner() {
        client(&state)
            .list_keys(viewer.request(pb::ListAccountKeysRequest {}))
            .await?
            .into_inner()
            .keys
            .iter()
            .map(key_spend)
            .collect()
    } else {
        Vec::new()
    };
    // Each call's key by name (an owner knows the account's keys; a member sees its own calls only).
    for row in &mut rows {
        let name = keys
            .iter()
            .find(|key| key["id"] == row["api_key_id"])
            .and_then(|key| key["name"].as_str())
            .filter(|name| !name.is_empty());
        row["key_name"] = match (name, viewer.owner()) {
            (Some(name), _) => name.into(),
            (None, false) => "this key".into(),
            (None, true) => row["api_key_id"].clone(),
        };
    }
    let data = json!({
        "filter": {"from": filter.from.to_string(), "to": filter.to.to_string(), "model": filter.model, "key": filter.key,
            "end_user": chosen_end_user},
        "end_users": end_users,
        "end_users_named": stats.by_end_user.iter().any(|entry| !entry.end_user_id.is_empty()),
        "query": filter.query(),
        "models": models,
        "keys": keys,
        "presets": filter.presets(Utc::now().date_naive()),
        "chart": {"width": chart::WIDTH, "height": chart::height(spend.models.len())},
        "days": days,
        "total_requests": total_requests,
        "total_cost": total_cost.normalize().to_string(),
        "truncated": truncated,
        "limit": CHART_RECORDS,
        "records": rows,
        "next": page_of_calls.next_cursor,
    });
    Ok(page("usage.html", &viewer, "Usage", "usage", data)?.into_response())
}

/// The chart of spend per day by model, as SVG.
pub async fn usage_chart(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<UsageQuery>,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let filter = UsageFilter::read(&query)?;
    let (records, _) = all_usage(&state, &viewer, &filter, CHART_RECORDS).await?;
    let spend = daily_spend(&filter, &records);
    let svg = chart::spend_per_day(&spend.days, &spend.models, &spend.cells);
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        svg,
    )
        .into_response())
}

/// A decimal of billing-svc, `0` when a record made before the field was kept leaves it empty.
fn zero_if_empty(text: &str) -> &str {
    if text.is_empty() { "0" } else { text }
}

/// The usage CSV's columns. The first fourteen are those of the first export and keep their places, so a
/// spreadsheet built on them still reads the same cells; later columns are only ever added at the end.
/// Provider cost, margin and the volume tier are the operator's figures and never appear here.
const USAGE_CSV_COLUMNS: &[&str] = &[
    "id",
    "timestamp",
    "model",
    "endpoint",
    "provider",
    "attempts",
    "status",
    "api_key_id",
    "workspace_id",
    "input_tokens",
    "output_tokens",
    "total_cost",
    "charged",
    "refunded_amount",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "request_fee",
    "end_user_id",
];

/// One usage record as a row of [`USAGE_CSV_COLUMNS`]: each field's text, and whether it is free text.
fn usage_csv_row(record: &pb::UsageRecord) -> Vec<(String, bool)> {
    let classes = record.classes.unwrap_or_default();
    let figure = |text: &str| (text.to_string(), false);
    let count = |count: u64| (count.to_string(), false);
    let free_text = |text: &str| (text.to_string(), true);
    let row = vec![
        figure(&record.id),
        figure(&time(record.timestamp.as_ref()).unwrap_or_default()),
        free_text(&record.model),
        free_text(&record.endpoint),
        free_text(&record.provider),
        count(record.attempts.into()),
        figure(&enum_name(record.status().as_str_name(), "USAGE_STATUS_")),
        figure(&record.api_key_id),
        free_text(&record.workspace_id),
        count(record.input_tokens),
        count(record.output_tokens),
        figure(&record.total_cost),
        figure(&record.charged),
        figure(record.refunded_amount.as_deref().unwrap_or("")),
        count(classes.cached_input_tokens),
        count(classes.cache_write_tokens),
        count(classes.cache_write_1h_tokens),
        count(classes.reasoning_tokens),
        count(classes.audio_input_tokens),
        count(classes.audio_output_tokens),
        figure(zero_if_empty(&record.request_fee)),
        free_text(&record.end_user_id),
    ];
    debug_assert_eq!(row.len(), USAGE_CSV_COLUMNS.len());
    row
}

/// Every call of the filter as CSV, with the same figures as `GET /billing/usage`.
pub async fn usage_csv(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<UsageQuery>,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let filter = UsageFilter::read(&query)?;
    let (records, truncated) = all_usage(&state, &viewer, &filter, CSV_ROWS).await?;
    if truncated {
        return Err(PageError::Invalid(format!(
            "more than {CSV_ROWS} calls in this range: export a shorter range"
        )));
    }
    let mut csv = Csv::new(USAGE_CSV_COLUMNS);
    for record in &records {
        let row = usage_csv_row(record);
        csv.row(
            row.iter()
                .map(|(text, free_text)| (text.as_str(), *free_text)),
        );
    }
    Ok(csv.download(&format!("usage-{}-{}.csv", filter.from, filter.to)))
}

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

/// The account's grants: those holding credit in spending order, then spent and expired ones.
pub async fn grants(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let list = client(&state)
        .list_grants(viewer.request(pb::ListAccountGrantsRequest {
            include_spent: true,
        }))
        .await?
        .into_inner();
    let payments = payments_configured(&state, &viewer).await?;
    let data = json!({
        "grants": list.grants.iter().map(grant).collect::<Vec<_>>(),
        "payments": payments,
    });
    Ok(page("grants.html", &viewer, "Grants", "grants", data)?.into_response())
}

/// Spend this month per workspace.
pub async fn workspaces(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_customer()?;
    let list = client(&state)
        .list_workspace_usage(viewer.request(pb::ListWorkspaceUsageRequest {
            range: Some(this_month()),
            api_key_id: None,
        }))
        .await?
        .into_inner();
    let rows: Vec<Value> = list
        .workspaces
        .iter()
        .map(|workspace| {
            let mut row = totals(workspace.totals.as_ref());
            row["id"] = workspace.workspace_id.clone().into();
            row
        })
        .collect();
    Ok(page(
        "workspaces.html",
        &viewer,
        "Workspaces",
        "workspaces",
        json!({"workspaces": rows}),
    )?
    .into_response())
}

/// The account's keys (owners).
pub async fn keys(
    State(state): State<ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    let list = client(&state)
        .list_keys(viewer.request(pb::ListAccountKeysRequest {}))
        .await?
        .into_inner();
    let data = json!({"keys": list.keys.iter().map(key_spend).collect::<Vec<_>>()});
    Ok(page("keys.html", &viewer, "Keys", "keys", data)?.into_response())
}

/// The account's webhooks page; with `retry`, its form sent back with what was typed and why it was refused.
async fn webhooks_view(
    state: &ConsoleState,
    viewer: &Viewer,
    created: Option<Value>,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let list = client(state)
        .list_webhooks(viewer.request(pb::ListWebhooksRequest {}))
        .await?
        .into_inner();
    super::webhooks_page(viewer, &list.endpoints, created, retry)
}

#[derive(Debug, Deserialize, Default)]
pub struct WebhooksQuery {
    /// The one-time reference of a signing secret just made ([`crate::reveal`]).
    shown: Option<String>,
}

/// The account's webhook endpoints (owners), and once, right after one was added, its signing secret.
pub async fn webhooks(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<WebhooksQuery>,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    let created = super::new_webhook_secret(&state, &viewer, query.shown.as_deref());
    webhooks_view(&state, &viewer, created, None).await
}

/// Adds an endpoint; its signing secret is shown once on the webhooks page. A refusal of what was typed (a
/// URL that is not http or https, an unknown event type) sends the form back as typed.
pub async fn create_webhook(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<super::WebhookForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let created = client(&state)
        .create_webhook(viewer.request(form.request()))
        .await;
    match created {
        Ok(created) => Ok(super::show_new_webhook(
            &state,
            &viewer,
            &created.into_inner(),
            "/console/webhooks",
        )),
        Err(status) => {
            let retry = form.retry(status.into())?;
            webhooks_view(&state, &viewer, None, Some(retry)).await
        }
    }
}

/// Removes an endpoint, once confirmed.
pub async fn delete_webhook(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<super::ConfirmForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let page = "/console/webhooks";
    if let Some(question) = super::unconfirmed_webhook_removal(&viewer, &form, &id, page) {
        return question;
    }
    client(&state)
        .delete_webhook(viewer.request(pb::DeleteWebhookRequest { id }))
        .await?;
    Ok(Redirect::to(page).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

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

/// Alerts and auto-recharge (owners).
pub async fn settings(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<DoneQuery>,
) -> Result<Response, PageError> {
    viewer.require_owner()?;
    settings_view(&state, &viewer, query.done.as_deref(), None).await
}

/// The alerts and auto-recharge page, its notice after a form named by `done`; with `retry`, one of its forms
/// sent back with what was typed and why it was refused.
async fn settings_view(
    state: &ConsoleState,
    viewer: &Viewer,
    done: Option<&str>,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let mut billing = client(state);
    let account_pb = billing
        .get_account(viewer.request(pb::GetAccountRequest {}))
        .await?
        .into_inner();
    let recharge = billing
        .get_auto_recharge(viewer.request(pb::GetAutoRechargeRequest {}))
        .await?
        .into_inner();
    let recent: Vec<Value> = recharge
        .recent
        .iter()
        .map(|charge| {
            json!({"created_at": time(charge.created_at.as_ref()), "amount": charge.amount,
                   "status": charge.status, "error": charge.error})
        })
        .collect();
    let data = json!({
        "notice": notice(done),
        "low_balance": account_pb.low_balance_alerts.join(", "),
        "recharge": {
            "payments": recharge.payments_configured, "saved_card": recharge.saved_card,
            "enabled": recharge.enabled, "threshold": recharge.threshold, "amount": recharge.amount,
            "monthly_max": recharge.monthly_max, "charged_this_month": recharge.charged_this_month,
            "consecutive_failures": recharge.consecutive_failures, "recent": recent,
        },
    });
    form_page(
        "settings.html",
        viewer,
        "Alerts and auto-recharge",
        "settings",
        data,
        retry,
    )
}

#[derive(Debug, Deserialize)]
pub struct AlertsForm {
    csrf: String,
    #[serde(default)]
    low_balance: String,
}

/// The alerts form's field ([`forms::Retry`]).
const ALERTS_FIELDS: forms::Fields = &[("low_balance", &["low_balance", "thresholds"])];

/// Replaces the `balance.low` thresholds; a refusal of what was typed (a threshold that is not an amount)
/// sends the form back as typed.
pub async fn set_alerts(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<AlertsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let sent = client(&state)
        .set_alerts(viewer.request(pb::SetAccountAlertsRequest {
            low_balance: forms::list(&form.low_balance),
        }))
        .await;
    match sent {
        Ok(_) => Ok(Redirect::to("/console/settings?done=alerts").into_response()),
        Err(status) => {
            let values = json!({"low_balance": form.low_balance});
            let retry = forms::Retry::of(status.into(), "alerts", ALERTS_FIELDS, values)?;
            settings_view(&state, &viewer, None, Some(retry)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AutoRechargeForm {
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
    threshold: String,
    amount: String,
    monthly_max: String,
}

/// The auto-recharge form's fields, by billing-svc's names for them ([`forms::Retry`]).
const RECHARGE_FIELDS: forms::Fields = &[
    ("threshold", &["threshold"]),
    ("amount", &["amount"]),
    ("monthly_max", &["monthly_max"]),
];

/// Saves the auto-recharge settings; a refusal of what was typed sends the form back as typed.
pub async fn set_auto_recharge(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<AutoRechargeForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let sent = client(&state)
        .set_auto_recharge(viewer.request(pb::SetAutoRechargeRequest {
            enabled: form.enabled.is_some(),
            threshold: form.threshold.trim().to_string(),
            amount: form.amount.trim().to_string(),
            monthly_max: form.monthly_max.trim().to_string(),
        }))
        .await;
    match sent {
        Ok(_) => Ok(Redirect::to("/console/settings?done=recharge").into_response()),
        Err(status) => {
            let values = json!({
                "enabled": form.enabled.is_some(), "threshold": form.threshold,
                "amount": form.amount, "monthly_max": form.monthly_max,
            });
            let retry = forms::Retry::of(status.into(), "recharge", RECHARGE_FIELDS, values)?;
            settings_view(&state, &viewer, None, Some(retry)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TopUpForm {
    csrf: String,
    amount: String,
}

/// The top-up form's field ([`forms::Retry`]).
const TOP_UP_FIELDS: forms::Fields = &[("amount", &["amount"])];

/// Starts a Checkout top-up and sends the browser to Stripe's page; a refusal of the amount typed sends the
/// overview back with it.
pub async fn top_up(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<TopUpForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_owner()?;
    let session = client(&state)
        .create_checkout(viewer.request(pb::CreateCheckoutRequest {
            amount: form.amount.trim().to_string(),
        }))
        .await;
    match session {
        Ok(session) => Ok(Redirect::to(&session.into_inner().checkout_url).into_response()),
        Err(status) => {
            let values = json!({"amount": form.amount});
            let retry = forms::Retry::of(status.into(), "top_up", TOP_UP_FIELDS, values)?;
            overview_view(&state, &viewer, Some(retry)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_csv_keeps_its_first_columns_and_adds_the_classes_at_the_end() {
        let first_export = [
            "id",
            "timestamp",
            "model",
            "endpoint",
            "provider",
            "attempts",
            "status",
            "api_key_id",
            "workspace_id",
            "input_tokens",
            "output_tokens",
            "total_cost",
            "charged",
            "refunded_amount",
        ];
        assert_eq!(&USAGE_CSV_COLUMNS[..first_export.len()], first_export);
        assert!(
            USAGE_CSV_COLUMNS
                .iter()
                .all(|column| !column.contains("provider_cost") && !column.contains("margin")),
            "a customer's export never holds the operator's figures"
        );

        let record = pb::UsageRecord {
            id: "7".to_string(),
            model: "gpt-4o".to_string(),
            input_tokens: 1000,
            output_tokens: 200,
            charged: "0.0123".to_string(),
            classes: Some(pb::TokenClasses {
                cached_input_tokens: 400,
                cache_write_tokens: 100,
                cache_write_1h_tokens: 50,
                reasoning_tokens: 80,
                audio_input_tokens: 0,
                audio_output_tokens: 0,
            }),
            request_fee: "0.001".to_string(),
            provider_cost: Some("0.006".to_string()),
            end_user_id: "alice".to_string(),
            ..Default::default()
        };
        let row = usage_csv_row(&record);
        let texts: Vec<&str> = row.iter().map(|(text, _)| text.as_str()).collect();
        assert_eq!(texts.len(), USAGE_CSV_COLUMNS.len());
        assert_eq!(
            texts[first_export.len()..],
            ["400", "100", "50", "80", "0", "0", "0.001", "alice"]
        );
        assert!(!texts.contains(&"0.006"), "no provider cost: {texts:?}");
    }

    #[test]
    fn a_record_made_before_the_request_fee_was_kept_shows_a_fee_of_zero() {
        let row = usage_csv_row(&pb::UsageRecord::default());
        let fee = USAGE_CSV_COLUMNS
            .iter()
            .position(|column| *column == "request_fee");
        assert_eq!(fee.map(|fee| row[fee].0.as_str()), Some("0"));
    }

    #[test]
    fn the_end_user_filter_reads_what_it_writes() {
        for chosen in [
            None,
            Some(EndUser::NoneNamed),
            Some(EndUser::Named("u:1 x".into())),
        ] {
            let param = EndUser::param(chosen.as_ref());
            assert_eq!(EndUser::read(&param).unwrap(), chosen);
        }
        assert!(EndUser::read("alice").is_err());
        assert_eq!(EndUser::of(""), EndUser::NoneNamed);
        assert_eq!(EndUser::NoneNamed.filter(), "");
    }
}
