//! One account's page, for the operator (CONSOLE.md, "What each one sees"): its figures, keys, grants and
//! latest events, its calls (filtered, paged, each with a Refund that fills the refund form) and ledger rows,
//! caps and volume tiers, and its revenue, provider cost and margin by model and by UTC day; and how the
//! page's forms are answered (post/redirect/get on success, the page again with the values kept after a
//! refusal of what was typed). The forms themselves are [`super::credits`], [`super::caps`],
//! [`super::tiers`] and [`super::keys`].

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Datelike;
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms;
use crate::pages::display::{
    TRANSACTION_TYPES, account, enum_name, grant, key_spend, notice, time, transaction_type,
};
use crate::pages::operator::admin_service::client;
use crate::pages::operator::events::event_summary;
use crate::pages::operator::margins::margins;
use crate::pages::statements::statement_rows;
use crate::render::form_page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The choices of how long a rotated key's old secret keeps working, and the one chosen unless changed.
pub(super) const ROTATION_GRACES: &[(u64, &str)] = &[
    (0, "Old secret stops now"),
    (3_600, "Old secret works 1 hour"),
    (86_400, "Old secret works 24 hours"),
    (604_800, "Old secret works 7 days"),
];
pub(super) const DEFAULT_ROTATION_GRACE_SECS: u64 = 86_400;
/// Volume tiers an account may have (billing-svc refuses more).
pub(super) const MAX_TIERS: usize = 16;
/// Empty rows the tiers form offers beyond the account's tiers.
pub(super) const BLANK_TIER_ROWS: usize = 3;
/// How many of an account's latest events its page lists (the events page has them all).
const ACCOUNT_EVENTS: u32 = 10;

/// An account page's query: the notice after a form, the UTC days of its revenue and margin, the filters and
/// page of its calls and of its ledger rows, and the call whose refund the refund form is filled for.
#[derive(Debug, Deserialize, Default)]
pub struct AccountQuery {
    done: Option<String>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The calls of this key only.
    #[serde(default)]
    key: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    calls_from: String,
    #[serde(default)]
    calls_to: String,
    #[serde(default)]
    calls_cursor: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    ledger_cursor: String,
    /// The usage record id the refund form is filled with (a call row's Refund).
    #[serde(default)]
    refund: String,
}

impl AccountQuery {
    /// The page's state as query pairs (the filters and pages of every section, not the notice nor the
    /// refund), those left empty omitted, without the fields named in `except`.
    fn keep(&self, except: &[&str]) -> Vec<(&'static str, String)> {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("key", &self.key),
            ("model", &self.model),
            ("status", &self.status),
            ("calls_from", &self.calls_from),
            ("calls_to", &self.calls_to),
            ("calls_cursor", &self.calls_cursor),
            ("type", &self.kind),
            ("ledger_cursor", &self.ledger_cursor),
        ]
        .into_iter()
        .filter(|(name, value)| !value.trim().is_empty() && !except.contains(name))
        .map(|(name, value)| (name, value.trim().to_string()))
        .collect()
    }
}

/// The account's page with the query `pairs`, at `anchor`.
pub(super) fn account_link(id: &str, pairs: &[(&str, String)], anchor: &str) -> String {
    let path = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let query = query.finish();
    let separator = if query.is_empty() { "" } else { "?" };
    format!("/console/admin/accounts/{path}{separator}{query}#{anchor}")
}

/// Query pairs as the hidden fields of a filter form, which keep the page's other sections as they were.
fn hidden(pairs: &[(&str, String)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

/// Calls and ledger rows shown per page of the account's page.
const ACCOUNT_PAGE_ROWS: u32 = 25;

/// The ways a call can end, as filters name them.
const USAGE_STATUSES: &[&str] = &["completed", "stopped_by_credit", "cancelled", "failed"];

fn usage_status(text: &str) -> Result<pb::UsageStatus, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(pb::UsageStatus::Unspecified);
    }
    if !USAGE_STATUSES.contains(&text) {
        return Err(PageError::Invalid(format!("no call status {text:?}")));
    }
    pb::UsageStatus::from_str_name(&format!("USAGE_STATUS_{}", text.to_uppercase()))
        .ok_or_else(|| PageError::Invalid(format!("no call status {text:?}")))
}

/// The calls filter's days as a time range: either end may be left empty (no bound).
fn calls_range(from: &str, to: &str) -> Result<pb::TimeRange, PageError> {
    let from = forms::optional(from)
        .map(|text| forms::day("From", &text))
        .transpose()?;
    let to = forms::optional(to)
        .map(|text| forms::day("To", &text))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(PageError::Invalid("From must not be after To".to_string()));
    }
    Ok(pb::TimeRange {
        from: from.map(forms::start_of),
        to: to.map(forms::end_of),
    })
}

/// One call as the account's page lists it; `keys` names the account's keys by id.
fn call_row(record: &pb::UsageRecord, keys: &HashMap<String, String>) -> Value {
    use rust_decimal::Decimal;
    let classes = record.classes.unwrap_or_default();
    let decimal = |text: &str| text.parse::<Decimal>().unwrap_or_default();
    let charged = decimal(&record.charged);
    let refunded = record.refunded_amount.as_deref().map(decimal);
    // Something is left to give back: a refund may be partial, and a second one takes what remains.
    let refundable = charged > Decimal::ZERO && refunded.is_none_or(|refunded| refunded < charged);
    json!({
        "id": record.id, "timestamp": time(record.timestamp.as_ref()),
        "key_id": record.api_key_id,
        "key": keys.get(&record.api_key_id).cloned().unwrap_or_else(|| record.api_key_id.clone()),
        "model": record.model, "endpoint": record.endpoint,
        "provider": record.provider, "attempts": record.attempts,
        "status": enum_name(record.status().as_str_name(), "USAGE_STATUS_"),
        "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
        "cached_input_tokens": classes.cached_input_tokens,
        "cache_write_tokens": classes.cache_write_tokens,
        "reasoning_tokens": classes.reasoning_tokens,
        "total_cost": record.total_cost, "charged": record.charged,
        "provider_cost": record.provider_cost,
        "duration_ms": record.duration_ms,
        "refunded": record.refunded_amount,
        "refundable": refundable,
    })
}

/// One ledger row as the account's page lists it.
fn ledger_row(row: &pb::Transaction, keys: &HashMap<String, String>) -> Value {
    json!({
        "id": row.id, "timestamp": time(row.timestamp.as_ref()),
        "type": enum_name(row.r#type().as_str_name(), "TRANSACTION_TYPE_"),
        "amount": row.amount, "balance_after": row.balance_after,
        "key": keys.get(&row.api_key_id).cloned().unwrap_or_else(|| row.api_key_id.clone()),
        "description": row.description,
    })
}

/// An account's volume tiers as shown, and the rows of the form that replaces them: its tiers, then a few
/// empty rows, at most [`MAX_TIERS`].
fn tiers(account: &pb::Account) -> (Vec<Value>, Vec<Value>) {
    let shown: Vec<Value> = account
        .discount_tiers
        .iter()
        .map(|tier| json!({"from": tier.from_monthly_spend, "percent": tier.percent_off}))
        .collect();
    let blanks = (shown.len() + BLANK_TIER_ROWS).min(MAX_TIERS) - shown.len().min(MAX_TIERS);
    let rows = shown
        .iter()
        .cloned()
        .chain(std::iter::repeat_n(
            json!({"from": "", "percent": ""}),
            blanks,
        ))
        .collect();
    (shown, rows)
}

/// One account: figures, keys, credit forms, caps, volume tiers, grants, and revenue, provider cost and
/// margin by model and by UTC day over a range of days (this month by default).
pub async fn account_page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<AccountQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    account_view(&state, &viewer, id, &query, None).await
}

/// The account's page; with `retry`, one of its forms sent back with what was typed and why it was refused,
/// answered with the refusal's status.
async fn account_view(
    state: &ConsoleState,
    viewer: &Viewer,
    id: String,
    query: &AccountQuery,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let today = chrono::Utc::now().date_naive();
    let first_of_month = today.with_day(1).unwrap_or(today);
    let (from, to) = forms::day_range(&query.from, &query.to, first_of_month, today)?;
    let mut admin = client(state);
    let with_keys = admin
        .get_account(viewer.request(pb::GetAccountAdminRequest {
            account_id: id.clone(),
        }))
        .await?
        .into_inner();
    let account_pb = with_keys.account.clone().unwrap_or_default();
    let grants = admin
        .list_grants(viewer.request(pb::ListGrantsRequest {
            api_key_id: id.clone(),
            include_spent: false,
        }))
        .await?
        .into_inner();
    let stats = admin
        .get_account_stats(viewer.request(pb::GetAccountStatsRequest {
            api_key_id: id.clone(),
            range: Some(pb::TimeRange {
                from: Some(forms::start_of(from)),
                to: Some(forms::end_of(to)),
            }),
        }))
        .await?
        .into_inner();
    let models: Vec<Value> = stats
        .by_model
        .iter()
        .map(|model| {
            let mut row = margins(model.totals.as_ref());
            row["model"] = model.model.clone().into();
            row
        })
        .collect();
    // Newest day first, as the usage page lists days.
    let days: Vec<Value> = stats
        .by_day
        .iter()
        .rev()
        .map(|day| {
            let mut row = margins(day.totals.as_ref());
            row["day"] = day.day.clone().into();
            row
        })
        .collect();
    let (shown_tiers, tier_rows) = tiers(&account_pb);
    let key_names: HashMap<String, String> = with_keys
        .keys
        .iter()
        .filter_map(|spend| spend.api_key.as_ref())
        .map(|key| (key.id.clone(), key.name.clone()))
        .collect();
    let calls = admin
        .list_account_usage(viewer.request(pb::ListAccountUsageRequest {
            account_id: id.clone(),
            query: Some(pb::ListUsageRequest {
                limit: ACCOUNT_PAGE_ROWS,
                cursor: forms::optional(&query.calls_cursor),
                range: Some(calls_range(&query.calls_from, &query.calls_to)?),
                workspace_id: None,
                model: forms::optional(&query.model),
                api_key_id: forms::optional(&query.key),
                status: usage_status(&query.status)?.into(),
                end_user_id: None,
            }),
        }))
        .await?
        .into_inner();
    let ledger = admin
        .list_account_transactions(viewer.request(pb::ListAccountTransactionsRequest {
            account_id: id.clone(),
            query: Some(pb::ListTransactionsRequest {
                limit: ACCOUNT_PAGE_ROWS,
                cursor: forms::optional(&query.ledger_cursor),
                r#type: transaction_type(query.kind.trim())?.into(),
            }),
            api_key_id: None,
        }))
        .await?
        .into_inner();
    let events: Vec<Value> = admin
        .list_events(viewer.request(pb::ListEventsRequest {
            account_id: Some(id.clone()),
            r#type: None,
            limit: ACCOUNT_EVENTS,
            cursor: None,
        }))
        .await?
        .into_inner()
        .events
        .iter()
        .map(event_summary)
        .collect();
    let calls_fields = [
        "key",
        "model",
        "status",
        "calls_from",
        "calls_to",
        "calls_cursor",
    ];
    let older = |cursor_field: &'static str, next: &Option<String>, anchor: &str| {
        next.as_ref().map(|next| {
            let mut pairs = query.keep(&[cursor_field]);
            pairs.push((cursor_field, next.clone()));
            account_link(&id, &pairs, anchor)
        })
    };
    let call_rows: Vec<Value> = calls
        .records
        .iter()
        .map(|record| {
            let mut row = call_row(record, &key_names);
            let mut pairs = query.keep(&[]);
            pairs.push(("refund", record.id.clone()));
            row["refund_link"] = account_link(&id, &pairs, "refund").into();
            row
        })
        .collect();
    let key_options: Vec<Value> = with_keys
        .keys
        .iter()
        .filter_map(|spend| spend.api_key.as_ref())
        .map(|key| json!({"id": key.id, "name": key.name, "hint": key.hint}))
        .collect();
    let statements = statement_rows(state, viewer, Some(id.clone())).await?;
    let data = json!({
        "statements": statements,
        "calls": {
            "rows": call_rows,
            "filter": {
                "key": query.key.trim(), "model": query.model.trim(), "status": query.status.trim(),
                "from": query.calls_from.trim(), "to": query.calls_to.trim(),
            },
            "keep": hidden(&query.keep(&calls_fields)),
            "next": older("calls_cursor", &calls.next_cursor, "calls"),
            "first": (!query.calls_cursor.trim().is_empty())
                .then(|| account_link(&id, &query.keep(&["calls_cursor"]), "calls")),
        },
        "ledger": {
            "rows": ledger.transactions.iter().map(|row| ledger_row(row, &key_names)).collect::<Vec<_>>(),
            "type": query.kind.trim(),
            "keep": hidden(&query.keep(&["type", "ledger_cursor"])),
            "next": older("ledger_cursor", &ledger.next_cursor, "ledger"),
            "first": (!query.ledger_cursor.trim().is_empty())
                .then(|| account_link(&id, &query.keep(&["ledger_cursor"]), "ledger")),
        },
        "range_keep": hidden(&query.keep(&["from", "to"])),
        "key_options": key_options,
        "statuses": USAGE_STATUSES,
        "types": TRANSACTION_TYPES,
        "refund": query.refund.trim(),
        "notice": notice(query.done.as_deref()),
        "account": account(&account_pb),
        "keys": with_keys.keys.iter().map(key_spend).collect::<Vec<_>>(),
        "rotation_graces": ROTATION_GRACES.iter().map(|(secs, label)| json!({
            "secs": secs, "label": label, "default": *secs == DEFAULT_ROTATION_GRACE_SECS,
        })).collect::<Vec<_>>(),
        "grants": grants.grants.iter().map(grant).collect::<Vec<_>>(),
        "events": events,
        "range": {"from": from.to_string(), "to": to.to_string()},
        "models": models,
        "days": days,
        "totals": margins(stats.totals.as_ref()),
        "tiers": shown_tiers,
        "tier_rows": tier_rows,
    });
    let title = if account_pb.name.is_empty() {
        "Account".to_string()
    } else {
        format!("Account {}", account_pb.name)
    };
    form_page(
        "admin_account.html",
        viewer,
        &title,
        "accounts",
        data,
        retry,
    )
}

pub(super) fn back_to(account_id: &str, done: &str) -> Response {
    let path = url::form_urlencoded::byte_serialize(account_id.as_bytes()).collect::<String>();
    Redirect::to(&format!("/console/admin/accounts/{path}?done={done}")).into_response()
}

/// How one of the account page's forms (`form`, its success noticed as `done`) is answered: a success goes
/// back to the page with its notice (post/redirect/get); a refusal of what was typed shows the page again
/// with the message beside its field and the values kept; anything else is an error page.
pub(super) async fn answer(
    state: &ConsoleState,
    viewer: &Viewer,
    id: &str,
    sent: Result<(), PageError>,
    (form, done): (&'static str, &str),
    fields: forms::Fields,
    values: Value,
) -> Result<Response, PageError> {
    match sent {
        Ok(()) => Ok(back_to(id, done)),
        Err(error) => retry_or_fail(state, viewer, id, error, form, fields, values).await,
    }
}

/// A refusal of what was typed in the account page's `form`: the page again with the message beside its
/// field and the values kept; any other error as it is.
pub(super) async fn retry_or_fail(
    state: &ConsoleState,
    viewer: &Viewer,
    id: &str,
    error: PageError,
    form: &'static str,
    fields: forms::Fields,
    values: Value,
) -> Result<Response, PageError> {
    let retry = forms::Retry::of(error, form, fields, values)?;
    account_view(
        state,
        viewer,
        id.to_string(),
        &AccountQuery::default(),
        Some(retry),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_page_link_keeps_the_other_sections_state() {
        let query = AccountQuery {
            from: "2025-01-01".to_string(),
            status: "completed".to_string(),
            calls_cursor: "c1".to_string(),
            kind: "refund".to_string(),
            ..Default::default()
        };
        let mut pairs = query.keep(&["calls_cursor"]);
        pairs.push(("calls_cursor", "c2".to_string()));
        assert_eq!(
            account_link("acct 1", &pairs, "calls"),
            "/console/admin/accounts/acct+1?from=2025-01-01&status=completed&type=refund&calls_cursor=c2#calls"
        );
        assert!(matches!(usage_status("done"), Err(PageError::Invalid(_))));
        assert_eq!(
            usage_status("stopped_by_credit").ok(),
            Some(pb::UsageStatus::StoppedByCredit)
        );
    }
}
