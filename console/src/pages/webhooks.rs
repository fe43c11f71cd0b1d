//! What the customer's and the operator's webhooks pages share (WEBHOOKS.md): the form adding an endpoint,
//! the list of endpoints (never a secret), the one showing of a new endpoint's signing secret, and the
//! question asked before an endpoint is removed.

use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms::{self, Retry};
use crate::pages::confirm::{ConfirmForm, confirm_page, confirmed};
use crate::pages::display::time;
use crate::viewer::Viewer;

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
    state: &crate::state::ConsoleState,
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
    state: &crate::state::ConsoleState,
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
