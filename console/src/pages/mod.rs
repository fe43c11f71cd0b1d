//! The pages: the customer's ([`customer`]) and the operator's ([`operator`]), the home that sends each to
//! theirs, the static assets, and what they share to show billing-svc's messages. Amounts are passed to the
//! templates exactly as billing-svc gives them (decimal strings); every page rounds them for reading, keeping
//! the exact figure on hover (the `usd` filter of [`crate::render`]); prices are rates and are shown exactly.
//! A form that takes typed values answers a refusal of what was typed with its page again, the values kept
//! ([`Retry`], [`crate::render::form_page`]). Times are RFC 3339 UTC, which the page's script shows in the
//! viewer's time zone.

pub mod customer;
pub mod operator;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use proto::billing::v1 as pb;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms::{self, Retry};
use crate::session::Viewer;

/// A destructive action's form: it acts only when `confirmed` is `yes`, which the page's script adds once
/// the visitor has answered its `data-confirm` question, and the confirmation page's form carries; without
/// JavaScript the first post only asks ([`confirm_page`]).
#[derive(Debug, serde::Deserialize)]
pub struct ConfirmForm {
    pub csrf: String,
    #[serde(default)]
    pub confirmed: String,
}

/// Whether a destructive form was confirmed.
pub fn confirmed(answer: &str) -> bool {
    answer == "yes"
}

/// The question a destructive action asks before it acts, for a browser without JavaScript: a form posting
/// `fields` again to `action` with `confirmed=yes`, and a way back that changes nothing.
pub fn confirm_page(
    viewer: &Viewer,
    question: &str,
    action: &str,
    fields: &[(&str, &str)],
    button: &str,
    back: &str,
) -> Result<Response, PageError> {
    let fields: Vec<Value> = fields
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let data = json!({
        "question": question, "action": action, "fields": fields, "button": button, "back": back,
    });
    Ok(crate::render::page("confirm.html", viewer, "Are you sure?", "", data)?.into_response())
}

/// The form adding a webhook endpoint (a customer's or the operator's). It never holds a secret (billing-svc
/// makes the signing secret), so a refusal sends it back as typed.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct WebhookForm {
    #[serde(skip_serializing)]
    pub csrf: String,
    url: String,
    #[serde(default)]
    event_types: String,
}

/// The webhook form's fields ([`Retry`]).
const WEBHOOK_FIELDS: forms::Fields = &[
    ("url", &["url"]),
    ("event_types", &["event_types", "event types"]),
];

impl WebhookForm {
    pub fn request(&self) -> pb::CreateWebhookRequest {
        pb::CreateWebhookRequest {
            url: self.url.trim().to_string(),
            event_types: forms::list(&self.event_types),
        }
    }

    /// The form sent back as typed when `error` refused what was typed; any other error as it is.
    pub fn retry(&self, error: PageError) -> Result<Retry, PageError> {
        let values = serde_json::to_value(self).unwrap_or_default();
        Retry::of(error, "webhook", WEBHOOK_FIELDS, values)
    }
}

/// An endpoint as the webhooks pages (the account's and the operator's) list it: never its secret.
fn endpoint(endpoint: &pb::WebhookEndpoint) -> Value {
    json!({
        "id": endpoint.id, "url": endpoint.url, "event_types": endpoint.event_types.join(", "),
        "created_at": time(endpoint.created_at.as_ref()), "disabled_at": time(endpoint.disabled_at.as_ref()),
    })
}

/// The signing secret of an endpoint just added, for its one showing (`shown` is the page's one-time
/// reference); a reference already used, or another session's, says the secret is gone.
pub fn new_webhook_secret(
    state: &crate::ConsoleState,
    viewer: &Viewer,
    shown: Option<&str>,
) -> Option<Value> {
    shown.map(|reference| {
        state
            .reveals
            .take(&viewer.csrf, reference)
            .unwrap_or_else(|| json!({"gone": true}))
    })
}

/// A webhooks page, the account's or the operator's (by the viewer): the `endpoints`, the signing secret just
/// made (`created`), and the form adding one, sent back with `retry` after a refusal of what was typed.
pub fn webhooks_page(
    viewer: &Viewer,
    endpoints: &[pb::WebhookEndpoint],
    created: Option<Value>,
    retry: Option<Retry>,
) -> Result<Response, PageError> {
    let (base, active) = if viewer.operator {
        ("/console/admin/webhooks", "admin-webhooks")
    } else {
        ("/console/webhooks", "webhooks")
    };
    let data = json!({
        "endpoints": endpoints.iter().map(endpoint).collect::<Vec<_>>(),
        "created": created, "base": base, "operator": viewer.operator,
    });
    crate::render::form_page("webhooks.html", viewer, "Webhooks", active, data, retry)
}

/// Keeps a new endpoint's signing secret for its one showing and sends the browser to `page`
/// (post/redirect/get: the URL holds only a one-time reference).
pub fn show_new_webhook(
    state: &crate::ConsoleState,
    viewer: &Viewer,
    created: &pb::WebhookEndpoint,
    page: &str,
) -> Response {
    let shown = json!({"url": created.url, "secret": created.secret});
    let reference = state.reveals.put(&viewer.csrf, shown);
    Redirect::to(&format!("{page}?shown={reference}")).into_response()
}

/// The question asked before removing the endpoint `id` listed on `page`, while `form` does not confirm it.
pub fn unconfirmed_webhook_removal(
    viewer: &Viewer,
    form: &ConfirmForm,
    id: &str,
    page: &str,
) -> Option<Result<Response, PageError>> {
    (!confirmed(&form.confirmed)).then(|| {
        confirm_page(
            viewer,
            &format!("Remove the endpoint {id}? It receives nothing more."),
            &format!("{page}/{id}/delete"),
            &[],
            "Remove",
            page,
        )
    })
}

/// `/console/`: the overview of a customer, the operator's overview of every account.
pub async fn home(
    state: axum::extract::State<crate::ConsoleState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    if viewer.operator {
        return Ok(Redirect::to("/console/admin/overview").into_response());
    }
    customer::overview(state, viewer).await
}

/// The console's stylesheet, script and icon, embedded in the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "console.css" => (
            include_str!("../../static/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("../../static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (include_str!("../../static/favicon.svg"), "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

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
