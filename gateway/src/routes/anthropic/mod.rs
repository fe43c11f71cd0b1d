//! Anthropic's API on top of the platform, so Anthropic SDKs (and Claude Code) work unchanged with
//! `base_url = <gateway>` and a `tb_` key in `x-api-key`: [`messages`] (and its unbilled `count_tokens`),
//! translated to and from chat completions by [`translate`]. Errors use Anthropic's shape
//! ([`crate::model_api::anthropic_error`]) everywhere under `/v1/messages` ([`crate::model_api::error_shape`]).

pub mod messages;
pub mod translate;

use axum::extract::rejection::JsonRejection;

use crate::model_api::anthropic_error::AnthropicError;

/// A JSON body whose rejections come out in Anthropic's error shape.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AnthropicError))]
pub struct AnthropicJson<T>(pub T);

impl From<JsonRejection> for AnthropicError {
    fn from(rejection: JsonRejection) -> AnthropicError {
        AnthropicError(rejection.into())
    }
}
