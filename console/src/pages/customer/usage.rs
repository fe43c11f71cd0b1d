//! The customer's usage (CONSOLE.md, "What each one sees"): spend per UTC day by model over a range, as a
//! chart and a table, the calls newest first, spend by end user, and every call of the filter as CSV.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use proto::billing::v1 as pb;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chart;
use crate::csv::Csv;
use crate::error::PageError;
use crate::forms;
use crate::pages::customer::account_service::{CSV_ROWS, PAGE_ROWS, client};
use crate::pages::display::{enum_name, key_spend, time, zero_if_empty};
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// Records read at most to draw a range's chart and totals.
const CHART_RECORDS: usize = 5_000;

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
