//! The operator's pages (CONSOLE.md, "What each one sees"): the overview of every account (revenue, provider
//! cost and margin by day, by model, and the top accounts), accounts and their keys (create, shown once with
//! a copy button, rotate, revoke), an account's calls (filtered, paged, each with a Refund that fills the
//! refund form) and ledger rows, credits (add with category and expiry, adjust, refund a call), caps, volume
//! tiers, any account's revenue, provider cost and margin by model and by day, the price book (BILLING.md,
//! "Prices": base and charged prices, set, end), events with their deliveries (Redeliver), and the operator's
//! own webhook endpoints. Every form that takes typed values (an account's new key, credit, adjust, refund,
//! caps and volume tiers forms, a key's policy, the price form, the webhook form) answers a refusal of what
//! was typed with its page again, the message beside its field and the values kept ([`forms::Retry`]).
//!
//! Provider cost and margin come only from AdminService, which fills them; they are the operator's figures
//! and no customer page shows them.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Datelike;
use proto::billing::v1 as pb;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{account, grant, key_spend, notice, time};
use crate::ConsoleState;
use crate::error::PageError;
use crate::forms;
use crate::render::{form_page, page};
use crate::session::Viewer;

/// The choices of how long a rotated key's old secret keeps working, and the one chosen unless changed.
const ROTATION_GRACES: &[(u64, &str)] = &[
    (0, "Old secret stops now"),
    (3_600, "Old secret works 1 hour"),
    (86_400, "Old secret works 24 hours"),
    (604_800, "Old secret works 7 days"),
];
const DEFAULT_ROTATION_GRACE_SECS: u64 = 86_400;
/// Accounts read at most by a search.
const SEARCHED_ACCOUNTS: usize = 5_000;
/// Volume tiers an account may have (billing-svc refuses more).
const MAX_TIERS: usize = 16;
/// Empty rows the tiers form offers beyond the account's tiers.
const BLANK_TIER_ROWS: usize = 3;

fn client(state: &ConsoleState) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(state.billing.clone())
}

#[derive(Debug, Deserialize, Default)]
pub struct AccountsQuery {
    #[serde(default)]
    q: String,
    cursor: Option<String>,
}

/// Every account, oldest first, or those whose name or id contains the search.
pub async fn accounts(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<AccountsQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    accounts_view(&state, &viewer, &query, None).await
}

/// The accounts page; with `retry`, its new account form sent back with the name typed and why it was
/// refused.
async fn accounts_view(
    state: &ConsoleState,
    viewer: &Viewer,
    query: &AccountsQuery,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let mut admin = client(state);
    let search = query.q.trim().to_lowercase();
    let (rows, next) = if search.is_empty() {
        let page_of_accounts = admin
            .list_accounts(viewer.request(pb::ListAccountsRequest {
                limit: 50,
                cursor: query.cursor.clone(),
            }))
            .await?
            .into_inner();
        (page_of_accounts.accounts, page_of_accounts.next_cursor)
    } else {
        let (mut found, mut cursor, mut read) = (Vec::new(), None, 0usize);
        loop {
            let page_of_accounts = admin
                .list_accounts(viewer.request(pb::ListAccountsRequest {
                    limit: 1000,
                    cursor,
                }))
                .await?
                .into_inner();
            read += page_of_accounts.accounts.len();
            found.extend(page_of_accounts.accounts.into_iter().filter(|account| {
                account.name.to_lowercase().contains(&search)
                    || account.account_id.to_lowercase().contains(&search)
            }));
            match page_of_accounts.next_cursor {
                Some(next) if read < SEARCHED_ACCOUNTS => cursor = Some(next),
                _ => break,
            }
        }
        (found, None)
    };
    let data = json!({
        "q": query.q,
        "accounts": rows.iter().map(account).collect::<Vec<_>>(),
        "next": next,
    });
    form_page(
        "admin_accounts.html",
        viewer,
        "Accounts",
        "accounts",
        data,
        retry,
    )
}

#[derive(Debug, Deserialize)]
pub struct NewAccountForm {
    csrf: String,
    name: String,
}

/// The new account form's field ([`forms::Retry`]).
const ACCOUNT_FIELDS: forms::Fields = &[("name", &["name"])];

/// Creates an account and opens its page; a refusal of the name typed sends the form back with it.
pub async fn create_account(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<NewAccountForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let created = client(&state)
        .create_account(viewer.request(pb::CreateAccountRequest {
            name: form.name.trim().to_string(),
        }))
        .await;
    match created {
        Ok(created) => Ok(Redirect::to(&format!(
            "/console/admin/accounts/{}?done=account",
            created.into_inner().account_id
        ))
        .into_response()),
        Err(status) => {
            let values = json!({"name": form.name});
            let retry = forms::Retry::of(status.into(), "account", ACCOUNT_FIELDS, values)?;
            accounts_view(&state, &viewer, &AccountsQuery::default(), Some(retry)).await
        }
    }
}

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
fn account_link(id: &str, pairs: &[(&str, String)], anchor: &str) -> String {
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
        "status": super::enum_name(record.status().as_str_name(), "USAGE_STATUS_"),
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
        "type": super::enum_name(row.r#type().as_str_name(), "TRANSACTION_TYPE_"),
        "amount": row.amount, "balance_after": row.balance_after,
        "key": keys.get(&row.api_key_id).cloned().unwrap_or_else(|| row.api_key_id.clone()),
        "description": row.description,
    })
}

/// Revenue (the usage's total cost), provider cost and margin of a set of calls, as AdminService gives them.
/// An empty provider cost or margin (records made before provider cost was kept) is shown as unknown, never
/// as zero.
fn margins(totals: Option<&pb::UsageTotals>) -> Value {
    let totals = totals.cloned().unwrap_or_default();
    let known = |text: String| (!text.is_empty()).then_some(text);
    json!({
        "requests": totals.requests,
        "tokens": totals.total_tokens,
        "revenue": if totals.total_cost.is_empty() { "0".to_string() } else { totals.total_cost },
        "provider_cost": known(totals.provider_cost),
        "margin": known(totals.margin),
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
                r#type: super::transaction_type(query.kind.trim())?.into(),
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
    let data = json!({
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
        "types": super::TRANSACTION_TYPES,
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

/// Replaces the account's volume tiers with the form's rows (BILLING.md, "Volume tiers"); rows left empty are
/// dropped, so a form with every row empty removes them. The fields come as pairs in the page's order
/// (`from_monthly_spend` then `percent_off`, one pair per row), so they are read as a list rather than a
/// struct.
pub async fn set_tiers(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let csrf = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    viewer.check_csrf(csrf)?;
    viewer.require_operator()?;
    let sent = async {
        let tiers = discount_tiers(&fields)?;
        client(&state)
            .update_account(viewer.request(pb::UpdateAccountRequest {
                account_id: id.clone(),
                discount_tiers: Some(pb::DiscountTiers { tiers }),
            }))
            .await?;
        Ok(())
    };
    let sent = sent.await;
    // The rows as typed, in the page's order, to send the form back after a refusal.
    let column = |field: &'static str| fields.iter().filter(move |(name, _)| name == field);
    let rows: Vec<Value> = column("from_monthly_spend")
        .zip(column("percent_off"))
        .map(|((_, from), (_, percent))| json!({"from": from, "percent": percent}))
        .collect();
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("tiers", "tiers"),
        TIERS_FIELDS,
        json!({"rows": rows}),
    )
    .await
}

/// The tiers form's fields: billing-svc names a column but not the row (its message goes above the form);
/// the console's own check names the row's input itself ([`PageError::InvalidField`]).
const TIERS_FIELDS: forms::Fields = &[];

/// The tiers the form's rows describe, in the page's order.
fn discount_tiers(fields: &[(String, String)]) -> Result<Vec<pb::DiscountTier>, PageError> {
    let column = |field: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(name, _)| name == field)
            .map(|(_, value)| value.trim())
            .collect()
    };
    let (spends, percents) = (column("from_monthly_spend"), column("percent_off"));
    if spends.len() != percents.len() {
        return Err(PageError::Invalid(
            "each tier needs a monthly spend and a percent off".to_string(),
        ));
    }
    if spends.len() > MAX_TIERS + BLANK_TIER_ROWS {
        return Err(PageError::Invalid(format!(
            "an account may have at most {MAX_TIERS} tiers"
        )));
    }
    let mut tiers = Vec::new();
    for (index, (spend, percent)) in spends.into_iter().zip(percents).enumerate() {
        let row = index + 1;
        // A refusal beside the row's input (its id on the page: `tier_from_2`, `tier_percent_2`).
        let refused = |column: &str, message: String| PageError::InvalidField {
            field: format!("tier_{column}_{row}"),
            message,
        };
        let percent = percent.trim_end_matches('%').trim();
        match (spend.is_empty(), percent.is_empty()) {
            (true, true) => continue,
            (false, true) => {
                return Err(refused(
                    "percent",
                    format!("Tier {row}: enter the percent off too, or empty the row"),
                ));
            }
            (true, false) => {
                return Err(refused(
                    "from",
                    format!("Tier {row}: enter the monthly spend too, or empty the row"),
                ));
            }
            (false, false) => {}
        }
        // Only the reading of what was typed: the rules of a tier (threshold, percent range) are
        // billing-svc's.
        if spend.parse::<rust_decimal::Decimal>().is_err() {
            return Err(refused(
                "from",
                format!("Tier {row}: enter the monthly spend as an amount in USD, such as 100"),
            ));
        }
        if percent.parse::<rust_decimal::Decimal>().is_err() {
            return Err(refused(
                "percent",
                format!("Tier {row}: enter the percent off as a number, such as 10 or 2.5"),
            ));
        }
        tiers.push(pb::DiscountTier {
            from_monthly_spend: spend.to_string(),
            percent_off: percent.to_string(),
        });
    }
    if tiers.len() > MAX_TIERS {
        return Err(PageError::Invalid(format!(
            "an account may have at most {MAX_TIERS} tiers"
        )));
    }
    Ok(tiers)
}

/// A key's policy as typed (API_KEY_MANAGEMENT.md, "Keys"): every field optional.
#[derive(Debug, Deserialize, serde::Serialize, Default)]
pub struct PolicyFields {
    #[serde(default)]
    daily_limit: String,
    #[serde(default)]
    monthly_limit: String,
    #[serde(default)]
    requests_per_minute: String,
    #[serde(default)]
    tokens_per_minute: String,
    #[serde(default)]
    max_concurrent: String,
    #[serde(default)]
    allowed_models: String,
    #[serde(default)]
    expires_at: String,
}

fn whole<T: std::str::FromStr>(label: &str, text: &str) -> Result<Option<T>, PageError> {
    forms::optional(text)
        .map(|text| {
            text.parse::<T>()
                .map_err(|_| PageError::Invalid(format!("{label}: enter a whole number")))
        })
        .transpose()
}

impl PolicyFields {
    fn policy(&self) -> Result<pb::KeyPolicy, PageError> {
        let models = forms::list(&self.allowed_models);
        Ok(pb::KeyPolicy {
            daily_limit: forms::optional(&self.daily_limit),
            monthly_limit: forms::optional(&self.monthly_limit),
            requests_per_minute: whole("Requests per minute", &self.requests_per_minute)?,
            tokens_per_minute: whole("Tokens per minute", &self.tokens_per_minute)?,
            max_concurrent: whole("Concurrent calls", &self.max_concurrent)?,
            allowed_models: (!models.is_empty()).then_some(pb::ModelList { models }),
            expires_at: forms::optional_day("Expires", &self.expires_at)?,
        })
    }
}

fn role(text: &str) -> Result<pb::Role, PageError> {
    match text {
        "" | "owner" => Ok(pb::Role::Owner),
        "member" => Ok(pb::Role::Member),
        other => Err(PageError::Invalid(format!("no role {other:?}"))),
    }
}

/// The new key form. It holds no secret (billing-svc makes the key), so a refusal sends it back as typed.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct NewKeyForm {
    #[serde(skip_serializing)]
    csrf: String,
    name: String,
    #[serde(default)]
    role: String,
    #[serde(flatten)]
    policy: PolicyFields,
}

/// Creates a key of the account and shows it once.
pub async fn create_key(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<NewKeyForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = async {
        let created = client(&state)
            .create_key(viewer.request(pb::CreateKeyRequest {
                name: form.name.trim().to_string(),
                key_type: pb::KeyType::Standard.into(),
                prefix: None,
                expires_at: None,
                account_id: Some(id.clone()),
                role: role(&form.role)?.into(),
                policy: Some(form.policy.policy()?),
            }))
            .await?
            .into_inner();
        Ok::<_, PageError>(created)
    };
    match sent.await {
        Ok(created) => Ok(reveal_key(&state, &viewer, &id, &created, "New key")),
        Err(error) => {
            let values = serde_json::to_value(&form).unwrap_or_default();
            retry_or_fail(&state, &viewer, &id, error, "key", KEY_FIELDS, values).await
        }
    }
}

/// The fields of a key's forms, new key and policy ([`forms::Retry`]): billing-svc names the policy's
/// fields `policy.daily_limit`, …; the console's own checks by their labels.
const KEY_FIELDS: forms::Fields = &[
    ("name", &["name"]),
    ("role", &["role"]),
    (
        "daily_limit",
        &["daily_limit", "policy.daily_limit", "key daily cap"],
    ),
    (
        "monthly_limit",
        &["monthly_limit", "policy.monthly_limit", "key monthly cap"],
    ),
    (
        "requests_per_minute",
        &["requests_per_minute", "requests per minute"],
    ),
    (
        "tokens_per_minute",
        &["tokens_per_minute", "tokens per minute"],
    ),
    ("max_concurrent", &["max_concurrent", "concurrent calls"]),
    ("allowed_models", &["allowed_models", "allowed models"]),
    (
        "expires_at",
        &["expires_at", "policy.expires_at", "expires"],
    ),
];

#[derive(Debug, Deserialize, Default)]
pub struct KeyQuery {
    account_id: String,
}

/// A key's name, role and policy, to change.
pub async fn key_page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<KeyQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    key_view(&state, &viewer, &id, &query.account_id, None).await
}

/// A key's page; with `retry`, its form sent back with what was typed and why it was refused. A revoked key
/// has no page (409, in words).
async fn key_view(
    state: &ConsoleState,
    viewer: &Viewer,
    id: &str,
    account_id: &str,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let with_keys = client(state)
        .get_account(viewer.request(pb::GetAccountAdminRequest {
            account_id: account_id.to_string(),
        }))
        .await?
        .into_inner();
    let key = with_keys
        .keys
        .iter()
        .filter_map(|spend| spend.api_key.as_ref())
        .find(|key| key.id == id)
        .ok_or_else(|| PageError::Invalid(format!("no key {id} in this account")))?;
    if super::KeyState::of(key, chrono::Utc::now()) == super::KeyState::Revoked {
        return key_refused_page(viewer, account_id);
    }
    let policy = key.policy.clone().unwrap_or_default();
    let data = json!({
        "account_id": account_id, "id": key.id, "name": key.name, "hint": key.hint,
        "role": super::enum_name(key.role().as_str_name(), "ROLE_"),
        "policy": {
            "daily_limit": policy.daily_limit, "monthly_limit": policy.monthly_limit,
            "requests_per_minute": policy.requests_per_minute.map(|n| n.to_string()),
            "tokens_per_minute": policy.tokens_per_minute.map(|n| n.to_string()),
            "max_concurrent": policy.max_concurrent.map(|n| n.to_string()),
            "allowed_models": policy.allowed_models.map(|list| list.models.join(", ")),
            "expires_at": time(policy.expires_at.as_ref()).map(|at| at[..10].to_string()),
        },
    });
    form_page(
        "admin_key.html",
        viewer,
        &format!("Key {}", key.name),
        "accounts",
        data,
        retry,
    )
}

/// The key policy form. It holds no secret, so a refusal sends it back as typed.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct KeyForm {
    #[serde(skip_serializing)]
    csrf: String,
    account_id: String,
    name: String,
    #[serde(default)]
    role: String,
    #[serde(flatten)]
    policy: PolicyFields,
}

/// Saves a key's name, role and policy (the policy is replaced whole). A refusal of what was typed sends the
/// form back as typed; a key revoked meanwhile is refused in words (409).
pub async fn update_key(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = async {
        client(&state)
            .update_key(viewer.request(pb::UpdateKeyRequest {
                id: id.clone(),
                name: forms::optional(&form.name),
                role: role(&form.role)?.into(),
                policy: Some(form.policy.policy()?),
            }))
            .await?;
        Ok::<_, PageError>(())
    };
    match sent.await {
        Ok(()) => Ok(back_to(&form.account_id, "key")),
        Err(error) if error.is_key_revoked() => key_refused_page(&viewer, &form.account_id),
        Err(error) => {
            let values = serde_json::to_value(&form).unwrap_or_default();
            let retry = forms::Retry::of(error, "key", KEY_FIELDS, values)?;
            key_view(&state, &viewer, &id, &form.account_id, Some(retry)).await
        }
    }
}

/// Keeps a new key's secret for its one page and sends the browser there (post/redirect/get: reloading that
/// page never makes another key). The URL holds only a one-time reference, never the key.
fn reveal_key(
    state: &ConsoleState,
    viewer: &Viewer,
    account_id: &str,
    created: &pb::CreateKeyResponse,
    title: &str,
) -> Response {
    let key = created.api_key.clone().unwrap_or_default();
    let account_name = created
        .account
        .as_ref()
        .map(|account| account.name.clone())
        .unwrap_or_default();
    let data = json!({
        "key": created.key, "name": key.name, "account_id": account_id, "account_name": account_name,
        "title": title,
    });
    let reference = state.reveals.put(&viewer.csrf, data);
    Redirect::to(&format!("/console/admin/new-key/{reference}")).into_response()
}

/// The page that shows a key's secret, once: a reload (or another session) finds it gone.
pub async fn key_shown_once(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(reference): Path<String>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let Some(data) = state.reveals.take(&viewer.csrf, &reference) else {
        let data = json!({"gone": true});
        return Ok(page(
            "admin_key_created.html",
            &viewer,
            "Key shown",
            "accounts",
            data,
        )?
        .into_response());
    };
    let title = data["title"].as_str().unwrap_or("New key").to_string();
    Ok(page("admin_key_created.html", &viewer, &title, "accounts", data)?.into_response())
}

/// A refusal about the key the operator acted on (a revoked key cannot be rotated or changed), shown in words
/// on a page of the console: the operator stays signed in.
fn key_refused(
    viewer: &Viewer,
    account_id: &str,
    status: tonic::Status,
) -> Result<Response, PageError> {
    let error = PageError::from(status);
    if !error.is_key_revoked() {
        return Err(error);
    }
    key_refused_page(viewer, account_id)
}

/// The page that says a key is revoked (409), in the console's layout.
fn key_refused_page(viewer: &Viewer, account_id: &str) -> Result<Response, PageError> {
    let data = json!({
        "message": "This key is revoked: a revoked key cannot be rotated or changed.",
        "back": format!("/console/admin/accounts/{}", url::form_urlencoded::byte_serialize(account_id.as_bytes()).collect::<String>()),
        "back_label": "Back to the account",
    });
    let html = page("refused.html", viewer, "Key revoked", "accounts", data)?;
    Ok((axum::http::StatusCode::CONFLICT, html).into_response())
}

#[derive(Debug, Deserialize)]
pub struct KeyActionForm {
    csrf: String,
    account_id: String,
    /// `yes` once a revoke was confirmed ([`super::ConfirmForm`]).
    #[serde(default)]
    confirmed: String,
    /// Rotation: seconds the old secret keeps working, one of [`ROTATION_GRACES`] (default 24 hours).
    #[serde(default)]
    grace_secs: String,
}

/// Rotates a key and shows its new secret once.
pub async fn rotate_key(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<KeyActionForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let grace = match form.grace_secs.trim() {
        "" => DEFAULT_ROTATION_GRACE_SECS,
        text => text
            .parse()
            .ok()
            .filter(|secs| ROTATION_GRACES.iter().any(|(choice, _)| choice == secs))
            .ok_or_else(|| {
                PageError::Invalid("grace: pick how long the old secret keeps working".into())
            })?,
    };
    let rotated = client(&state)
        .rotate_key(viewer.request(pb::RotateKeyRequest {
            id,
            grace_period_secs: Some(grace),
        }))
        .await;
    match rotated {
        Ok(rotated) => Ok(reveal_key(
            &state,
            &viewer,
            &form.account_id,
            &rotated.into_inner(),
            "Rotated key",
        )),
        Err(status) => key_refused(&viewer, &form.account_id, status),
    }
}

pub async fn revoke_key(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<KeyActionForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    if !super::confirmed(&form.confirmed) {
        let back = account_link(&form.account_id, &[], "keys");
        return super::confirm_page(
            &viewer,
            &format!("Revoke the key {id}? Calls with it are refused at once."),
            &format!("/console/admin/keys/{id}/revoke"),
            &[("account_id", &form.account_id)],
            "Revoke",
            &back,
        );
    }
    client(&state)
        .revoke_key(viewer.request(pb::RevokeKeyRequest { id }))
        .await?;
    Ok(back_to(&form.account_id, "revoked"))
}

fn back_to(account_id: &str, done: &str) -> Response {
    let path = url::form_urlencoded::byte_serialize(account_id.as_bytes()).collect::<String>();
    Redirect::to(&format!("/console/admin/accounts/{path}?done={done}")).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CreditsForm {
    csrf: String,
    amount: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    description: String,
}

pub async fn add_credits(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CreditsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = async {
        let category = match form.category.as_str() {
            "" | "paid" => pb::GrantCategory::Paid,
            "promotional" => pb::GrantCategory::Promotional,
            other => return Err(PageError::Invalid(format!("no category {other:?}"))),
        };
        client(&state)
            .add_credits(viewer.request(pb::AddCreditsRequest {
                api_key_id: id.clone(),
                amount: form.amount.trim().to_string(),
                description: forms::optional(&form.description),
                idempotency_key: None,
                category: category.into(),
                expires_at: forms::optional_day("Expires", &form.expires_at)?,
                priority: None,
            }))
            .await?;
        Ok(())
    };
    let values = json!({"amount": form.amount, "category": form.category,
                        "expires_at": form.expires_at, "description": form.description});
    answer(
        &state,
        &viewer,
        &id,
        sent.await,
        ("credits", "credits"),
        CREDITS_FIELDS,
        values,
    )
    .await
}

/// The fields of the account page's forms, and the words a refusal names each by ([`forms::Retry`]).
const CREDITS_FIELDS: forms::Fields = &[
    ("amount", &["amount"]),
    ("category", &["category"]),
    ("expires_at", &["expires_at", "expires"]),
    ("description", &["description"]),
];
const ADJUST_FIELDS: forms::Fields = &[("amount", &["amount"]), ("reason", &["reason"])];
const REFUND_FIELDS: forms::Fields = &[
    ("usage_record_id", &["usage_record_id", "usage record"]),
    ("amount", &["amount"]),
    ("reason", &["reason"]),
];
const LIMITS_FIELDS: forms::Fields = &[
    ("daily_limit", &["daily_limit", "daily"]),
    ("monthly_limit", &["monthly_limit", "monthly"]),
];

/// How one of the account page's forms (`form`, its success noticed as `done`) is answered: a success goes
/// back to the page with its notice (post/redirect/get); a refusal of what was typed shows the page again
/// with the message beside its field and the values kept; anything else is an error page.
async fn answer(
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
async fn retry_or_fail(
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

#[derive(Debug, Deserialize)]
pub struct AdjustForm {
    csrf: String,
    amount: String,
    reason: String,
}

pub async fn adjust(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<AdjustForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = client(&state)
        .adjust_credits(viewer.request(pb::AdjustCreditsRequest {
            api_key_id: id.clone(),
            amount: form.amount.trim().to_string(),
            reason: form.reason.trim().to_string(),
            idempotency_key: None,
        }))
        .await
        .map(drop)
        .map_err(PageError::from);
    let values = json!({"amount": form.amount, "reason": form.reason});
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("adjust", "adjusted"),
        ADJUST_FIELDS,
        values,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    csrf: String,
    usage_record_id: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

pub async fn refund(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = client(&state)
        .refund(viewer.request(pb::RefundRequest {
            api_key_id: id.clone(),
            usage_record_id: form.usage_record_id.trim().to_string(),
            amount: forms::optional(&form.amount),
            reason: forms::optional(&form.reason),
        }))
        .await
        .map(drop)
        .map_err(PageError::from);
    let values = json!({"usage_record_id": form.usage_record_id, "amount": form.amount,
                        "reason": form.reason});
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("refund", "refunded"),
        REFUND_FIELDS,
        values,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct LimitsForm {
    csrf: String,
    #[serde(default)]
    daily_limit: String,
    #[serde(default)]
    monthly_limit: String,
}

pub async fn set_limits(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<LimitsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let sent = client(&state)
        .set_limits(viewer.request(pb::SetLimitsRequest {
            api_key_id: id.clone(),
            daily_limit: forms::optional(&form.daily_limit),
            monthly_limit: forms::optional(&form.monthly_limit),
        }))
        .await
        .map(drop)
        .map_err(PageError::from);
    let values = json!({"daily_limit": form.daily_limit, "monthly_limit": form.monthly_limit});
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("limits", "limits"),
        LIMITS_FIELDS,
        values,
    )
    .await
}

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
    /// `yes` once the end was confirmed ([`super::ConfirmForm`]).
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
    if !super::confirmed(&form.confirmed) {
        let whom = match forms::optional(&form.account_id) {
            Some(account_id) => format!("account {account_id}"),
            None => "all accounts".to_string(),
        };
        return super::confirm_page(
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

#[derive(Debug, Deserialize, Default)]
pub struct EventsQuery {
    #[serde(default)]
    account_id: String,
    #[serde(default, rename = "type")]
    kind: String,
    cursor: Option<String>,
    done: Option<String>,
}

/// Events of every account (or one, of a type), newest first, each with its deliveries: the endpoint's URL
/// (the operator's endpoints by URL; an account's endpoint, which AdminService does not list, by its id),
/// and a Redeliver button on an event whose last attempt at an endpoint failed.
pub async fn events(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<EventsQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let mut admin = client(&state);
    let list = admin
        .list_events(viewer.request(pb::ListEventsRequest {
            account_id: forms::optional(&query.account_id),
            r#type: forms::optional(&query.kind),
            limit: 50,
            cursor: query.cursor.clone(),
        }))
        .await?
        .into_inner();
    let urls: HashMap<String, String> = admin
        .list_webhooks(viewer.request(pb::ListWebhooksRequest {}))
        .await?
        .into_inner()
        .endpoints
        .into_iter()
        .map(|endpoint| (endpoint.id, endpoint.url))
        .collect();
    let rows: Vec<Value> = list
        .events
        .iter()
        .map(|event| event_row(event, &urls))
        .collect();
    let data = json!({
        "events": rows, "next": list.next_cursor, "account_id": query.account_id, "type": query.kind,
        "notice": notice(query.done.as_deref()),
    });
    Ok(page("admin_events.html", &viewer, "Events", "events", data)?.into_response())
}

/// How many of an account's latest events its page lists (the events page has them all).
const ACCOUNT_EVENTS: u32 = 10;

/// The overview looks for failed deliveries among this many of the latest events, and lists at most
/// [`SHOWN_FAILURES`] of them.
const FAILURE_SCAN_EVENTS: u32 = 100;
const SHOWN_FAILURES: usize = 10;

/// One event as an account's page lists it: its type and time, and how its deliveries went (the last attempt
/// at each endpoint counts).
fn event_summary(event: &pb::Event) -> Value {
    let last_succeeded = last_attempts(event);
    let failed = last_succeeded
        .values()
        .filter(|succeeded| !**succeeded)
        .count();
    json!({
        "id": event.id, "created_at": time(event.created_at.as_ref()), "type": event.r#type,
        "account_id": event.account_id,
        "events_link": format!(
            "/console/admin/events?account_id={}&type={}",
            url::form_urlencoded::byte_serialize(event.account_id.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(event.r#type.as_bytes()).collect::<String>()
        ),
        "endpoints": last_succeeded.len(), "failed": failed,
        "delivered": last_succeeded.len() - failed, "attempts": event.deliveries.len(),
    })
}

/// Whether the last attempt at each endpoint of an event succeeded (attempts come oldest first, so the last
/// one per endpoint wins).
fn last_attempts(event: &pb::Event) -> HashMap<&str, bool> {
    event
        .deliveries
        .iter()
        .map(|attempt| (attempt.endpoint_id.as_str(), attempt.succeeded))
        .collect()
}

/// One event as the events page shows it. It may be delivered again when the last attempt at some endpoint
/// failed.
fn event_row(event: &pb::Event, urls: &HashMap<String, String>) -> Value {
    let last_succeeded = last_attempts(event);
    let deliveries: Vec<Value> = event
        .deliveries
        .iter()
        .map(|attempt| {
            json!({"attempt": attempt.attempt, "at": time(attempt.at.as_ref()), "succeeded": attempt.succeeded,
                   "status": attempt.status, "error": attempt.error, "endpoint_id": attempt.endpoint_id,
                   "url": urls.get(&attempt.endpoint_id)})
        })
        .collect();
    json!({
        "id": event.id, "created_at": time(event.created_at.as_ref()), "type": event.r#type,
        "account_id": event.account_id, "data": event.data_json, "deliveries": deliveries,
        "failed": last_succeeded.values().any(|succeeded| !succeeded),
    })
}

#[derive(Debug, Deserialize)]
pub struct RedeliverForm {
    csrf: String,
    #[serde(default)]
    account_id: String,
    #[serde(default, rename = "type")]
    kind: String,
}

/// Posts an event again, now, to every enabled endpoint subscribed to it (AdminService/RedeliverEvent), then
/// back to the events page with the same filter (post/redirect/get).
pub async fn redeliver_event(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<RedeliverForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    client(&state)
        .redeliver_event(viewer.request(pb::RedeliverEventRequest { event_id: id }))
        .await?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("account_id", &form.account_id)
        .append_pair("type", &form.kind)
        .append_pair("done", "redelivered")
        .finish();
    Ok(Redirect::to(&format!("/console/admin/events?{query}")).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct WebhooksQuery {
    /// The one-time reference of a signing secret just made ([`crate::reveal`]).
    shown: Option<String>,
}

/// The operator's webhook endpoints (they receive every account's events), and once, right after one was
/// added, its signing secret.
pub async fn webhooks(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<WebhooksQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let created = super::new_webhook_secret(&state, &viewer, query.shown.as_deref());
    webhooks_view(&state, &viewer, created, None).await
}

/// The operator's webhooks page; with `retry`, its form sent back with what was typed and why it was refused.
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

/// Adds an operator endpoint; its signing secret is shown once on the webhooks page. A refusal of what was
/// typed sends the form back as typed.
pub async fn create_webhook(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<super::WebhookForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let created = client(&state)
        .create_webhook(viewer.request(form.request()))
        .await;
    match created {
        Ok(created) => Ok(super::show_new_webhook(
            &state,
            &viewer,
            &created.into_inner(),
            "/console/admin/webhooks",
        )),
        Err(status) => {
            let retry = form.retry(status.into())?;
            webhooks_view(&state, &viewer, None, Some(retry)).await
        }
    }
}

/// Removes an operator endpoint, once confirmed.
pub async fn delete_webhook(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<super::ConfirmForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let page = "/console/admin/webhooks";
    if let Some(question) = super::unconfirmed_webhook_removal(&viewer, &form, &id, page) {
        return question;
    }
    client(&state)
        .delete_webhook(viewer.request(pb::DeleteWebhookRequest { id }))
        .await?;
    Ok(Redirect::to(page).into_response())
}

/// The overview's query: a preset range of UTC days, or a custom one (`from`, `to`).
#[derive(Debug, Deserialize, Default)]
pub struct OverviewQuery {
    #[serde(default)]
    range: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The overview's preset ranges of UTC days, as its links name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preset {
    Today,
    LastSevenDays,
    ThisMonth,
    LastMonth,
}

impl Preset {
    const ALL: [Preset; 4] = [
        Preset::Today,
        Preset::LastSevenDays,
        Preset::ThisMonth,
        Preset::LastMonth,
    ];

    fn name(self) -> &'static str {
        match self {
            Preset::Today => "today",
            Preset::LastSevenDays => "7d",
            Preset::ThisMonth => "month",
            Preset::LastMonth => "last_month",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Preset::Today => "Today",
            Preset::LastSevenDays => "Last 7 days",
            Preset::ThisMonth => "This month",
            Preset::LastMonth => "Last month",
        }
    }

    /// The first and last UTC day of the preset, both included, as seen on `today`.
    fn days(self, today: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
        let first_of_month = today.with_day(1).unwrap_or(today);
        match self {
            Preset::Today => (today, today),
            Preset::LastSevenDays => (today - chrono::Duration::days(6), today),
            Preset::ThisMonth => (first_of_month, today),
            Preset::LastMonth => {
                let last = first_of_month - chrono::Duration::days(1);
                (last.with_day(1).unwrap_or(last), last)
            }
        }
    }
}

/// Top accounts the overview lists.
const TOP_ACCOUNTS: u32 = 10;

/// The overview of every account: revenue, provider cost and margin over a range of UTC days (a preset or
/// custom), by day, by model, and the accounts with the most revenue, each linked to its page.
pub async fn overview(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<OverviewQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let today = chrono::Utc::now().date_naive();
    let custom = query.range == "custom"
        || (query.range.is_empty()
            && !(query.from.trim().is_empty() && query.to.trim().is_empty()));
    let preset = if custom {
        None
    } else {
        let named = if query.range.is_empty() {
            "month"
        } else {
            query.range.as_str()
        };
        Some(
            Preset::ALL
                .into_iter()
                .find(|preset| preset.name() == named)
                .ok_or_else(|| PageError::Invalid(format!("no range {named:?}")))?,
        )
    };
    let (from, to) = match preset {
        Some(preset) => preset.days(today),
        None => {
            let first_of_month = today.with_day(1).unwrap_or(today);
            forms::day_range(&query.from, &query.to, first_of_month, today)?
        }
    };
    let stats = client(&state)
        .get_platform_stats(viewer.request(pb::GetPlatformStatsRequest {
            range: Some(pb::TimeRange {
                from: Some(forms::start_of(from)),
                to: Some(forms::end_of(to)),
            }),
            top_accounts: TOP_ACCOUNTS,
        }))
        .await?
        .into_inner();
    let named = |label: &str, value: &str, totals: Option<&pb::UsageTotals>| {
        let mut row = margins(totals);
        row[label] = value.into();
        row
    };
    // Newest day first, as the account's page lists days.
    let days: Vec<Value> = stats
        .by_day
        .iter()
        .rev()
        .map(|day| named("day", &day.day, day.totals.as_ref()))
        .collect();
    let models: Vec<Value> = stats
        .by_model
        .iter()
        .map(|model| named("model", &model.model, model.totals.as_ref()))
        .collect();
    let accounts: Vec<Value> = stats
        .top_accounts
        .iter()
        .map(|top| {
            let mut row = named("id", &top.account_id, top.totals.as_ref());
            row["name"] = top.name.clone().into();
            row["link"] = format!(
                "/console/admin/accounts/{}",
                url::form_urlencoded::byte_serialize(top.account_id.as_bytes()).collect::<String>()
            )
            .into();
            row
        })
        .collect();
    // Failed deliveries: the latest events whose last attempt at some endpoint failed.
    let failed: Vec<Value> = client(&state)
        .list_events(viewer.request(pb::ListEventsRequest {
            account_id: None,
            r#type: None,
            limit: FAILURE_SCAN_EVENTS,
            cursor: None,
        }))
        .await?
        .into_inner()
        .events
        .iter()
        .map(event_summary)
        .filter(|event| event["failed"].as_u64().is_some_and(|failed| failed > 0))
        .take(SHOWN_FAILURES)
        .collect();
    let presets: Vec<Value> = Preset::ALL
        .into_iter()
        .map(|each| {
            json!({"name": each.name(), "label": each.label(), "current": Some(each) == preset})
        })
        .collect();
    let data = json!({
        "range": {"from": from.to_string(), "to": to.to_string()},
        "presets": presets,
        "custom": preset.is_none(),
        "totals": margins(stats.totals.as_ref()),
        "days": days,
        "models": models,
        "accounts": accounts,
        "top": TOP_ACCOUNTS,
        "failed": failed,
        "scanned": FAILURE_SCAN_EVENTS,
    });
    Ok(page("admin_overview.html", &viewer, "Overview", "overview", data)?.into_response())
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

    #[test]
    fn the_presets_cover_whole_utc_days() {
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a day");
        let today = day("2025-03-15");
        for (preset, from, to) in [
            (Preset::Today, "2025-03-15", "2025-03-15"),
            (Preset::LastSevenDays, "2025-03-09", "2025-03-15"),
            (Preset::ThisMonth, "2025-03-01", "2025-03-15"),
            (Preset::LastMonth, "2025-02-01", "2025-02-28"),
        ] {
            assert_eq!(preset.days(today), (day(from), day(to)), "{preset:?}");
        }
        assert_eq!(
            Preset::LastMonth.days(day("2025-01-01")),
            (day("2024-12-01"), day("2024-12-31")),
            "last month across a year"
        );
    }

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

    #[test]
    fn tier_rows_left_empty_are_ignored() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .flat_map(|(from, percent)| {
                    [
                        ("from_monthly_spend".to_string(), from.to_string()),
                        ("percent_off".to_string(), percent.to_string()),
                    ]
                })
                .collect()
        };
        let tiers = discount_tiers(&fields(&[("100", "5"), ("", ""), (" 1000 ", "10 %")]))
            .expect("two tiers");
        let read: Vec<(&str, &str)> = tiers
            .iter()
            .map(|tier| (tier.from_monthly_spend.as_str(), tier.percent_off.as_str()))
            .collect();
        assert_eq!(read, [("100", "5"), ("1000", "10")]);

        let none = discount_tiers(&fields(&[("", ""), ("", "")])).expect("no tiers");
        assert!(none.is_empty(), "every row empty removes the tiers");

        for (pairs, field, why) in [
            (
                &[("100", "")][..],
                "tier_percent_1",
                "a threshold without a percent",
            ),
            (
                &[("", ""), ("", "5")][..],
                "tier_from_2",
                "a percent without a threshold",
            ),
            (
                &[("100", "ten")][..],
                "tier_percent_1",
                "a percent that is not a number",
            ),
            (
                &[("lots", "5")][..],
                "tier_from_1",
                "a threshold that is not an amount",
            ),
        ] {
            match discount_tiers(&fields(pairs)) {
                Err(PageError::InvalidField { field: refused, .. }) => {
                    assert_eq!(refused, field, "{why} is refused beside its input");
                }
                other => panic!("{why} is refused beside its input: {other:?}"),
            }
        }
    }
}
