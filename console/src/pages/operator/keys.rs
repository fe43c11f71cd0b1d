//! An account's keys, for the operator (API_KEY_MANAGEMENT.md, "Keys"): create one with its role and policy,
//! its secret shown once (with a copy button), change a key's name, role and policy, rotate, revoke.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use crate::error::PageError;
use crate::forms;
use crate::pages::confirm::{confirm_page, confirmed};
use crate::pages::display::{KeyState, enum_name, time};
use crate::pages::operator::account::{
    DEFAULT_ROTATION_GRACE_SECS, ROTATION_GRACES, account_link, back_to, retry_or_fail,
};
use crate::pages::operator::admin_service::client;
use crate::render::{form_page, page};
use crate::state::ConsoleState;
use crate::viewer::Viewer;

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
    if KeyState::of(key, chrono::Utc::now()) == KeyState::Revoked {
        return key_refused_page(viewer, account_id);
    }
    let policy = key.policy.clone().unwrap_or_default();
    let data = json!({
        "account_id": account_id, "id": key.id, "name": key.name, "hint": key.hint,
        "role": enum_name(key.role().as_str_name(), "ROLE_"),
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
    /// `yes` once a revoke was confirmed ([`crate::pages::confirm::ConfirmForm`]).
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
    if !confirmed(&form.confirmed) {
        let back = account_link(&form.account_id, &[], "keys");
        return confirm_page(
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
