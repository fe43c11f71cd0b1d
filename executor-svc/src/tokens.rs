//! Local token counts with tiktoken: the prompt estimate that sizes the first hold, the running output
//! count reported to billing-svc, and the fallback when a provider reports no usage.
//!
//! The tokenizer is the model's (o200k for the GPT-4o/4.1/5 and o-series families), cl100k for any model
//! tiktoken does not know. Chat prompts follow OpenAI's cookbook rule: 3 tokens per message plus its role
//! and content, plus 3 for the reply's priming. mock-model counts the same way, so estimates against it are
//! exact.

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use crate::execution::Message;

/// Tokens added per message for its framing.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply, once per prompt.
const REPLY_PRIMING_TOKENS: u64 = 3;

fn bpe(model: &str) -> &'static CoreBPE {
    match get_tokenizer(model) {
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => tiktoken_rs::o200k_base_singleton(),
        Some(
            Tokenizer::Cl100kBase
            | Tokenizer::P50kBase
            | Tokenizer::R50kBase
            | Tokenizer::P50kEdit
            | Tokenizer::Gpt2,
        )
        | None => tiktoken_rs::cl100k_base_singleton(),
    }
}

/// Tokens of a piece of text, special-token look-alikes counted as plain text.
pub fn text_tokens(model: &str, text: &str) -> u64 {
    bpe(model).encode_ordinary(text).len() as u64
}

/// The estimated prompt tokens of a conversation.
pub fn prompt_tokens(model: &str, messages: &[Message]) -> u64 {
    let bpe = bpe(model);
    let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
    messages
        .iter()
        .fold(REPLY_PRIMING_TOKENS, |total, message| {
            total + TOKENS_PER_MESSAGE + count(message.role.as_str()) + count(&message.content)
        })
}

/// Loads the tables before the first request needs them.
pub fn warm_up() {
    let _ = tiktoken_rs::cl100k_base_singleton();
    let _ = tiktoken_rs::o200k_base_singleton();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::execution::Role;

    #[test]
    fn prompt_estimate_follows_the_cookbook_rule() {
        let messages = [Message {
            role: Role::User,
            content: "Hello world".into(),
        }];
        // 3 (priming) + 3 (message) + 1 ("user") + 2 ("Hello world").
        assert_eq!(prompt_tokens("mock", &messages), 9);
        assert_eq!(prompt_tokens("gpt-4o-mini", &messages), 9);
    }

    #[test]
    fn unknown_models_count_with_cl100k() {
        assert_eq!(text_tokens("some-local-model", " The quick brown fox"), 4);
    }
}
