//! OpenAI's API on top of the platform, so OpenAI SDKs work unchanged with `base_url = <gateway>/v1` and a
//! `tb_` key: [`chat`] completions, [`responses`] (translated to chat completions), [`embeddings`] and
//! [`models`]; and the organization Usage and Costs APIs over the account's usage ([`organization`]). Requests reach the provider as the
//! client wrote them and answers come back as the provider wrote them; the platform adds only its billing
//! figures (`x-billing-*` headers, and a `billing` object on a stream's last chunk). Errors use OpenAI's
//! shape ([`crate::model_api::openai_error`]).

pub mod chat;
pub mod embeddings;
pub mod models;
pub mod organization;
pub mod responses;

use crate::model_api::openai_error::OpenAiError;

/// OpenAI SDKs cannot add body fields easily, but all can add headers.
pub const WORKSPACE_HEADER: &str = "x-workspace-id";
pub const SESSION_HEADER: &str = "x-session-id";

/// A JSON body whose rejections come out in OpenAI's error shape.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(OpenAiError))]
pub struct OpenAiJson<T>(pub T);
