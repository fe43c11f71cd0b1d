//! `cl100k_base` token counts, and texts cut into one-token pieces so that streamed answers can be
//! counted chunk by chunk.

use tiktoken_rs::CoreBPE;

/// The tokenizer every count of the mock uses.
pub fn bpe() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// Tokens of a text, special-token look-alikes counted as plain text (`encode_ordinary`).
pub fn count(text: &str) -> u32 {
    saturate(bpe().encode_ordinary(text).len())
}

/// A count that does not fit a `u32` reads as `u32::MAX`.
pub fn saturate(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// One piece of a [`TokenPieces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    pub text: &'a str,
    /// 1, or more where a token ends inside a UTF-8 character and the next tokens were merged in.
    pub tokens: u32,
}

/// A text cut into pieces of one `cl100k_base` token each, in order; the pieces concatenate to the text and
/// their tokens sum to its token count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPieces {
    text: String,
    /// Where each piece ends in `text` (bytes) and how many tokens it holds.
    ends: Vec<(usize, u32)>,
}

impl TokenPieces {
    /// Cuts `text` at its token boundaries. A token that ends inside a UTF-8 character (never with ASCII)
    /// is merged with the next ones, so every piece is valid text.
    pub fn from_text(text: String) -> TokenPieces {
        let bpe = bpe();
        let tokens = bpe.encode_ordinary(&text);
        let mut ends = Vec::with_capacity(tokens.len());
        let mut end = 0usize;
        let mut pending = 0u32;
        for token in &tokens {
            let Ok(bytes) = bpe.decode_bytes(&[*token]) else {
                // An ordinary encoding only yields known tokens; keep the counts right if it ever did not.
                pending += 1;
                continue;
            };
            end += bytes.len();
            pending += 1;
            if text.is_char_boundary(end) {
                ends.push((end, pending));
                pending = 0;
            }
        }
        if pending > 0 || end != text.len() {
            ends.push((text.len(), pending));
        }
        debug_assert_eq!(
            ends.iter()
                .map(|(_, tokens)| *tokens as usize)
                .sum::<usize>(),
            tokens.len()
        );
        TokenPieces { text, ends }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The piece at `index`; panics if out of bounds, like slice indexing.
    pub fn piece(&self, index: usize) -> Piece<'_> {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.ends[previous].0);
        let (end, tokens) = self.ends[index];
        Piece {
            text: &self.text[start..end],
            tokens,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Piece<'_>> {
        (0..self.len()).map(|index| self.piece(index))
    }

    /// Tokens of the first `pieces` pieces.
    pub fn tokens_of_first(&self, pieces: usize) -> u32 {
        self.ends[..pieces.min(self.ends.len())]
            .iter()
            .map(|(_, tokens)| *tokens)
            .sum()
    }

    pub fn tokens(&self) -> u32 {
        self.tokens_of_first(self.ends.len())
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Keeps the longest prefix of pieces that holds at most `budget` tokens; returns the tokens kept.
    pub fn truncate_to_tokens(&mut self, budget: u32) -> u32 {
        let mut kept_tokens = 0u32;
        let mut kept_pieces = 0usize;
        for (_, tokens) in &self.ends {
            if kept_tokens + tokens > budget {
                break;
            }
            kept_tokens += tokens;
            kept_pieces += 1;
        }
        self.ends.truncate(kept_pieces);
        let end = self.ends.last().map_or(0, |(end, _)| *end);
        self.text.truncate(end);
        kept_tokens
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_text_and_sum_to_its_tokens() {
        for text in [
            r#"{"city":"Paris","days":1}"#,
            "I'm sorry, I can't help with that.",
            "",
            "naïve café — ünïcödé 東京",
        ] {
            let pieces = TokenPieces::from_text(text.to_owned());
            let joined: String = pieces.iter().map(|piece| piece.text).collect();
            assert_eq!(joined, text);
            assert_eq!(pieces.tokens(), count(text), "{text}");
        }
    }

    #[test]
    fn ascii_pieces_are_one_token_each() {
        let pieces = TokenPieces::from_text(r#"{"city":"Paris","days":1}"#.to_owned());
        assert!(pieces.len() > 3);
        for piece in pieces.iter() {
            assert_eq!(piece.tokens, 1);
            assert_eq!(count(piece.text), 1, "{:?}", piece.text);
        }
    }

    #[test]
    fn truncation_keeps_whole_pieces_within_the_budget() {
        let mut pieces = TokenPieces::from_text("one two three four".to_owned());
        assert_eq!(pieces.truncate_to_tokens(2), 2);
        assert_eq!(pieces.text(), "one two");
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces.truncate_to_tokens(0), 0);
        assert!(pieces.is_empty());
        assert_eq!(pieces.text(), "");
    }
}
