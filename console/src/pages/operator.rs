//! The operator's pages (DESIGN §13): accounts and their keys (create, shown once with a copy button, rotate,
//! revoke), credits (add with category and expiry, adjust, refund a call), caps, any account's usage,
//! prices, and events with their deliveries.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{account, by_model, grant, key_spend, notice, time};
use crate::ConsoleState;
use crate::error::PageError;
use crate::forms;
use crate::render::page;
use crate::session::Viewer;

/// How long a rotated key's old secret keeps working when rotated from the console.
const ROTATION_GRACE_SECS: u64 = 86_400;
/// Accounts read at most by a search.
const SEARCHED_ACCOUNTS: usize = 5_000;

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
    let mut admin = client(&state);
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
    Ok(page("admin_accounts.html", &viewer, "Accounts", "accounts", data)?.into_response())
}

#[derive(Debug, Deserialize)]
pub struct NewAccountForm {
    csrf: String,
    name: String,
}

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
        .await?
        .into_inner();
    Ok(Redirect::to(&format!(
        "/console/admin/accounts/{}?done=account",
        created.account_id
    ))
    .into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// One account: figures, keys, credit forms, caps, grants and this month's usage.
pub async fn account_page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let mut admin = client(&state);
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
            range: None,
        }))
        .await?
        .into_inner();
    let data = json!({
        "notice": notice(query.done.as_deref()),
        "account": account(&account_pb),
        "keys": with_keys.keys.iter().map(key_spend).collect::<Vec<_>>(),
        "grants": grants.grants.iter().map(grant).collect::<Vec<_>>(),
        "models": by_model(&stats),
    });
    let title = if account_pb.name.is_empty() {
        "Account".to_string()
    } else {
        format!("Account {}", account_pb.name)
    };
    Ok(page("admin_account.html", &viewer, &title, "accounts", data)?.into_response())
}

/// A key's policy as typed (DESIGN §9): every field optional.
#[derive(Debug, Deserialize, Default)]
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

#[derive(Debug, Deserialize)]
pub struct NewKeyForm {
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
    key_shown_once(&viewer, &id, &created, "New key")
}

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
    let with_keys = client(&state)
        .get_account(viewer.request(pb::GetAccountAdminRequest {
            account_id: query.account_id.clone(),
        }))
        .await?
        .into_inner();
    let key = with_keys
        .keys
        .iter()
        .filter_map(|spend| spend.api_key.as_ref())
        .find(|key| key.id == id)
        .ok_or_else(|| PageError::Invalid(format!("no live key {id} in this account")))?;
    let policy = key.policy.clone().unwrap_or_default();
    let data = json!({
        "account_id": query.account_id, "id": key.id, "name": key.name, "hint": key.hint,
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
    Ok(page(
        "admin_key.html",
        &viewer,
        &format!("Key {}", key.name),
        "accounts",
        data,
    )?
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    csrf: String,
    account_id: String,
    name: String,
    #[serde(default)]
    role: String,
    #[serde(flatten)]
    policy: PolicyFields,
}

/// Saves a key's name, role and policy (the policy is replaced whole).
pub async fn update_key(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    client(&state)
        .update_key(viewer.request(pb::UpdateKeyRequest {
            id,
            name: forms::optional(&form.name),
            role: role(&form.role)?.into(),
            policy: Some(form.policy.policy()?),
        }))
        .await?;
    Ok(back_to(&form.account_id, "key"))
}

/// The page that shows a key's secret, once.
fn key_shown_once(
    viewer: &Viewer,
    account_id: &str,
    created: &pb::CreateKeyResponse,
    title: &str,
) -> Result<Response, PageError> {
    let key = created.api_key.clone().unwrap_or_default();
    let account_name = created
        .account
        .as_ref()
        .map(|account| account.name.clone())
        .unwrap_or_default();
    let data = json!({
        "key": created.key, "name": key.name, "account_id": account_id, "account_name": account_name,
    });
    Ok(page("admin_key_created.html", viewer, title, "accounts", data)?.into_response())
}

#[derive(Debug, Deserialize)]
pub struct KeyActionForm {
    csrf: String,
    account_id: String,
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
    let rotated = client(&state)
        .rotate_key(viewer.request(pb::RotateKeyRequest {
            id,
            grace_period_secs: Some(ROTATION_GRACE_SECS),
        }))
        .await?
        .into_inner();
    key_shown_once(&viewer, &form.account_id, &rotated, "Rotated key")
}

pub async fn revoke_key(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<KeyActionForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
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
    Ok(back_to(&id, "credits"))
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
    client(&state)
        .adjust_credits(viewer.request(pb::AdjustCreditsRequest {
            api_key_id: id.clone(),
            amount: form.amount.trim().to_string(),
            reason: form.reason.trim().to_string(),
            idempotency_key: None,
        }))
        .await?;
    Ok(back_to(&id, "adjusted"))
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
    client(&state)
        .refund(viewer.request(pb::RefundRequest {
            api_key_id: id.clone(),
            usage_record_id: form.usage_record_id.trim().to_string(),
            amount: forms::optional(&form.amount),
            reason: forms::optional(&form.reason),
        }))
        .await?;
    Ok(back_to(&id, "refunded"))
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
    client(&state)
        .set_limits(viewer.request(pb::SetLimitsRequest {
            api_key_id: id.clone(),
            daily_limit: forms::optional(&form.daily_limit),
            monthly_limit: forms::optional(&form.monthly_limit),
        }))
        .await?;
    Ok(back_to(&id, "limits"))
}

/// Current and future prices.
pub async fn prices(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<DoneQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let list = client(&state)
        .list_prices(viewer.request(pb::ListPricesRequest {}))
        .await?
        .into_inner();
    let rows: Vec<Value> = list
        .prices
        .iter()
        .map(|price| {
            json!({
                "model": price.model, "input": price.input_price_per_1k, "output": price.output_price_per_1k,
                "markup": price.markup, "effective_from": time(price.effective_from.as_ref()),
            })
        })
        .collect();
    let data = json!({"prices": rows, "notice": notice(query.done.as_deref())});
    Ok(page("admin_prices.html", &viewer, "Prices", "prices", data)?.into_response())
}

#[derive(Debug, Deserialize)]
pub struct PriceForm {
    csrf: String,
    model: String,
    input: String,
    output: String,
    #[serde(default)]
    markup: String,
}

pub async fn set_price(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<PriceForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    client(&state)
        .set_price(viewer.request(pb::SetPriceRequest {
            model: form.model.trim().to_string(),
            base_input_price_per_1k: form.input.trim().to_string(),
            base_output_price_per_1k: form.output.trim().to_string(),
            markup: forms::optional(&form.markup),
            ..Default::default()
        }))
        .await?;
    Ok(Redirect::to("/console/admin/prices?done=price").into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct EventsQuery {
    #[serde(default)]
    account_id: String,
    #[serde(default, rename = "type")]
    kind: String,
    cursor: Option<String>,
}

/// Events of every account (or one, of a type), newest first, with their deliveries.
pub async fn events(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<EventsQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let list = client(&state)
        .list_events(viewer.request(pb::ListEventsRequest {
            account_id: forms::optional(&query.account_id),
            r#type: forms::optional(&query.kind),
            limit: 50,
            cursor: query.cursor.clone(),
        }))
        .await?
        .into_inner();
    let rows: Vec<Value> = list
        .events
        .iter()
        .map(|event| {
            let deliveries: Vec<Value> = event
                .deliveries
                .iter()
                .map(|attempt| {
                    json!({"attempt": attempt.attempt, "at": time(attempt.at.as_ref()), "succeeded": attempt.succeeded,
                           "status": attempt.status, "error": attempt.error})
                })
                .collect();
            json!({
                "created_at": time(event.created_at.as_ref()), "type": event.r#type, "account_id": event.account_id,
                "data": event.data_json, "deliveries": deliveries,
            })
        })
        .collect();
    let data = json!({
        "events": rows, "next": list.next_cursor, "account_id": query.account_id, "type": query.kind,
    });
    Ok(page("admin_events.html", &viewer, "Events", "events", data)?.into_response())
}
