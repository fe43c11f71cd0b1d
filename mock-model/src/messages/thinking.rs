//! The `thinking` block an answer opens with when the request enables thinking (`enabled` or `adaptive`):
//! [`THINKING`], counted in `output_tokens` and cut first by `max_tokens`, signed with the standard base64
//! of the SHA-256 of its text (stable, opaque, and checkable by a test).

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::tokens::TokenPieces;

/// What the model thinks, whatever the request.
pub const THINKING: &str = "The user wants a short answer. Let me think it through step by step.";

/// A thinking block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thinking {
    /// The text, cut into one-token pieces for streaming.
    pub text: TokenPieces,
    pub signature: String,
}

impl Thinking {
    /// [`THINKING`], cut to at most `max_tokens` tokens.
    pub fn new(max_tokens: Option<u32>) -> Thinking {
        let mut text = TokenPieces::from_text(THINKING.to_owned());
        if let Some(budget) = max_tokens {
            text.truncate_to_tokens(budget);
        }
        let signature = signature(text.text());
        Thinking { text, signature }
    }

    /// Whether `max_tokens` cut it.
    pub fn is_cut(&self) -> bool {
        self.text.text().len() < THINKING.len()
    }
}

/// The signature of a thinking text.
pub fn signature(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tokens;

    #[test]
    fn thinking_is_signed_with_the_sha256_of_its_text() {
        let thinking = Thinking::new(None);
        assert_eq!(thinking.text.text(), THINKING);
        assert_eq!(thinking.text.tokens(), tokens::count(THINKING));
        assert_eq!(thinking.signature, signature(THINKING));
        assert_eq!(thinking.signature.len(), 44);
        assert!(!thinking.is_cut());
    }

    #[test]
    fn max_tokens_cuts_the_thinking_and_its_signature_follows() {
        let thinking = Thinking::new(Some(3));
        assert_eq!(thinking.text.tokens(), 3);
        assert!(thinking.is_cut());
        assert_eq!(thinking.signature, signature(thinking.text.text()));
    }
}
