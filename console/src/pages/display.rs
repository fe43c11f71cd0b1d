//! How the pages show billing-svc's messages: times as RFC 3339 UTC, enum values by their snake_case names,
//! accounts, keys (and whether each still works), grants, usage totals, the ledger's transaction types, and
//! the notice after a form. Amounts stay billing-svc's exact decimal strings; the templates round them for
//! reading.

use chrono::{DateTime, SecondsFormat, Utc};
use proto::billing::v1 as pb;
use serde_json::{Value, json};

use crate::error::PageError;

/// A time as RFC 3339 UTC (seconds), or `None`.
pub fn time(at: Option<&prost_types::Timestamp>) -> Option<String> {
    let at = at?;
    let nanos = u32::try_from(at.nanos).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(at.seconds, nanos)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The snake_case name of a proto enum value (`TRANSACTION_TYPE_CREDIT_GRANT` → `credit_grant`).
pub fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_lowercase()
}

/// The ledger's transaction types, as filters name them.
pub const TRANSACTION_TYPES: &[&str] = &[
    "credit_purchase",
    "credit_grant",
    "credit_adjustment",
    "usage_deduction",
    "refund",
    "credit_expiry",
];

/// A transaction type filter as typed (empty: every type).
pub fn transaction_type(text: &str) -> Result<pb::TransactionType, PageError> {
    if text.is_empty() {
        return Ok(pb::TransactionType::Unspecified);
    }
    if !TRANSACTION_TYPES.contains(&text) {
        return Err(PageError::Invalid(format!("no transaction type {text:?}")));
    }
    pb::TransactionType::from_str_name(&format!("TRANSACTION_TYPE_{}", text.to_uppercase()))
        .ok_or_else(|| PageError::Invalid(format!("no transaction type {text:?}")))
}

pub fn totals(totals: Option<&pb::UsageTotals>) -> Value {
    let totals = totals.cloned().unwrap_or_default();
    json!({
        "requests": totals.requests,
        "tokens": totals.total_tokens,
        "cost": if totals.total_cost.is_empty() { "0".to_string() } else { totals.total_cost },
    })
}

pub fn by_model(stats: &pb::Stats) -> Vec<Value> {
    stats
        .by_model
        .iter()
        .map(|model| {
            let mut row = totals(model.totals.as_ref());
            row["model"] = model.model.clone().into();
            row
        })
        .collect()
}

pub fn grant(grant: &pb::CreditGrant) -> Value {
    json!({
        "category": enum_name(grant.category().as_str_name(), "GRANT_CATEGORY_"),
        "amount": grant.amount, "remaining": grant.remaining, "priority": grant.priority,
        "expires_at": time(grant.expires_at.as_ref()), "created_at": time(grant.created_at.as_ref()),
    })
}

pub fn key_spend(spend: &pb::KeySpend) -> Value {
    let key = spend.api_key.clone().unwrap_or_default();
    let policy = &key.policy;
    let mut rules = Vec::new();
    if let Some(policy) = policy {
        if let Some(limit) = &policy.daily_limit {
            rules.push(format!("daily {limit} USD"));
        }
        if let Some(limit) = &policy.monthly_limit {
            rules.push(format!("monthly {limit} USD"));
        }
        if let Some(rpm) = policy.requests_per_minute {
            rules.push(format!("{rpm} req/min"));
        }
        if let Some(models) = &policy.allowed_models {
            rules.push(format!("models: {}", models.models.join(", ")));
        }
    }
    let state = KeyState::of(&key, Utc::now());
    json!({
        "id": key.id, "name": key.name, "hint": key.hint,
        "role": enum_name(key.role().as_str_name(), "ROLE_"),
        "spent_today": spend.spent_today, "spent_this_month": spend.spent_this_month,
        "expires_at": time(key.expires_at.as_ref()), "created_at": time(key.created_at.as_ref()),
        "last_used_at": time(spend.last_used_at.as_ref()),
        "revoked_at": time(key.revoked_at.as_ref()),
        "state": state.name(),
        "live": state == KeyState::Live,
        "policy": if rules.is_empty() { "none".to_string() } else { rules.join("; ") },
        "daily_limit": policy.as_ref().and_then(|policy| policy.daily_limit.clone()),
        "monthly_limit": policy.as_ref().and_then(|policy| policy.monthly_limit.clone()),
    })
}

/// Whether a key still works: a revoked or expired key is listed as such, with nothing left to do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Live,
    Revoked,
    Expired,
}

impl KeyState {
    pub fn of(key: &pb::ApiKey, now: DateTime<Utc>) -> KeyState {
        let passed = |at: Option<&prost_types::Timestamp>| {
            at.is_some_and(|at| (at.seconds, at.nanos) <= (now.timestamp(), 0))
        };
        if key.revoked_at.is_some() {
            KeyState::Revoked
        } else if passed(key.expires_at.as_ref())
            || passed(
                key.policy
                    .as_ref()
                    .and_then(|policy| policy.expires_at.as_ref()),
            )
        {
            KeyState::Expired
        } else {
            KeyState::Live
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyState::Live => "live",
            KeyState::Revoked => "revoked",
            KeyState::Expired => "expired",
        }
    }
}

pub fn account(account: &pb::Account) -> Value {
    json!({
        "id": account.account_id, "name": account.name, "balance": account.credits_balance,
        "held": account.held_credits, "total_spent": account.total_spent,
        "daily_limit": account.daily_limit, "monthly_limit": account.monthly_limit,
        "created_at": time(account.created_at.as_ref()),
    })
}

/// A page's notice after a form was sent and the browser was sent back (`?done=`): fixed texts only, so a
/// link cannot make the page say anything else.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "credits" => "Credits added.",
        "adjusted" => "Balance adjusted.",
        "refunded" => "Refund made.",
        "limits" => "Caps saved.",
        "key" => "Key saved.",
        "revoked" => "Key revoked.",
        "price" => "Price saved.",
        "ended" => "Price ended.",
        "tiers" => "Volume tiers saved.",
        "alerts" => "Alerts saved.",
        "recharge" => "Auto-recharge saved.",
        "account" => "Account created.",
        "redelivered" => "Delivery queued again: the new attempts are listed under the event.",
        _ => return None,
    })
}

/// A decimal of billing-svc, `0` when a record made before the field was kept leaves it empty.
pub fn zero_if_empty(text: &str) -> &str {
    if text.is_empty() { "0" } else { text }
}
