//! The operator's own webhook endpoints (they receive every account's events; WEBHOOKS.md): list, add (its
//! signing secret shown once), remove.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::Value;

use crate::error::PageError;
use crate::forms;
use crate::pages::confirm::ConfirmForm;
use crate::pages::operator::admin_service::client;
use crate::pages::webhooks::{
    WebhookForm, new_webhook_secret, show_new_webhook, unconfirmed_webhook_removal, webhooks_page,
};
use crate::state::ConsoleState;
use crate::viewer::Viewer;

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
    let created = new_webhook_secret(&state, &viewer, query.shown.as_deref());
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
    webhooks_page(viewer, &list.endpoints, created, retry)
}

/// Adds an operator endpoint; its signing secret is shown once on the webhooks page. A refusal of what was
/// typed sends the form back as typed.
pub async fn create_webhook(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<WebhookForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let created = client(&state)
        .create_webhook(viewer.request(form.request()))
        .await;
    match created {
        Ok(created) => Ok(show_new_webhook(
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
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let page = "/console/admin/webhooks";
    if let Some(question) = unconfirmed_webhook_removal(&viewer, &form, &id, page) {
        return question;
    }
    client(&state)
        .delete_webhook(viewer.request(pb::DeleteWebhookRequest { id }))
        .await?;
    Ok(Redirect::to(page).into_response())
}
