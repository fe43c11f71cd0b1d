//! The question a destructive action asks before it acts (revoke a key, end a price, remove a webhook
//! endpoint): the page's script asks it in the browser; without JavaScript the first post only asks, on a
//! page of its own whose form posts again, confirmed.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::PageError;
use crate::viewer::Viewer;

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
