//! What the model APIs (`/v1/*` in OpenAI's dialect, `/v1/messages` in Anthropic's, `/execute`) share:
//! which error shape a path answers in ([`error_shape`]), OpenAI's and Anthropic's error bodies
//! ([`openai_error`], [`anthropic_error`]), the billing figures and rate-limit headers added to an
//! answer ([`billing`]), and what a finished execution says about its usage and cost ([`execution_summary`]).

pub mod anthropic_error;
pub mod billing;
pub mod error_shape;
pub mod execution_summary;
pub mod openai_error;
